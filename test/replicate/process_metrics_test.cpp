// Parsing /proc/self/stat and /proc/stat for the process_* metrics, on fixed text (no I/O).
#include <process_metrics.hpp>

#include <catch2/catch.hpp>

using namespace kvship::replicate;

namespace {

// A real line of /proc/<pid>/stat (proc(5)), with a command name holding spaces and parentheses.
constexpr std::string_view stat_line =
    "4242 (consul (re)plicate) S 1 4242 4242 0 -1 4194560 1234 0 0 0 250 75 0 0 20 0 3 0 "
    "987654 123456789 2048 18446744073709551615 1 1 0 0 0 0 0 4096 16384 0 0 0 17 1 0 0 0 0 0\n";

}  // namespace

TEST_CASE("parse_proc_stat reads utime, stime, starttime, vsize and rss after the last ')'", "[replicate][process]")
{
    auto const st = parse_proc_stat(stat_line);
    REQUIRE(st);
    CHECK(st->utime_ticks == 250);
    CHECK(st->stime_ticks == 75);
    CHECK(st->starttime_ticks == 987654);
    CHECK(st->vsize_bytes == 123456789);
    CHECK(st->rss_pages == 2048);
}

TEST_CASE("parse_proc_stat refuses malformed text", "[replicate][process]")
{
    CHECK_FALSE(parse_proc_stat(""));
    CHECK_FALSE(parse_proc_stat("4242 consul S 1 2 3"));              // no parentheses
    CHECK_FALSE(parse_proc_stat("4242 (consul) S 1 4242 4242 0 -1"));  // too few fields
    std::string bad(stat_line);
    bad.replace(bad.find(" 250 "), 5, " x50 ");
    CHECK_FALSE(parse_proc_stat(bad));
}

TEST_CASE("parse_boot_time finds the btime line of /proc/stat", "[replicate][process]")
{
    constexpr std::string_view text =
        "cpu  1 2 3 4 5 6 7 0 0 0\ncpu0 1 2 3 4 5 6 7 0 0 0\nintr 12345 0 0\nctxt 999\n"
        "btime 1764700000\nprocesses 4321\nprocs_running 2\n";
    CHECK(parse_boot_time(text) == 1764700000u);
    CHECK_FALSE(parse_boot_time("cpu 1 2 3\nctxt 5\n"));
    CHECK_FALSE(parse_boot_time("btime soon\n"));
}

TEST_CASE("to_sample converts ticks and pages to seconds and bytes", "[replicate][process]")
{
    auto const st = parse_proc_stat(stat_line);
    REQUIRE(st);
    auto const s = to_sample(*st, 100, 4096, 1764700000);
    CHECK(s.cpu_seconds == Approx(3.25));
    CHECK(s.resident_bytes == 2048.0 * 4096);
    CHECK(s.virtual_bytes == 123456789.0);
    CHECK(s.start_time_seconds == Approx(1764700000 + 9876.54));
}

TEST_CASE("read_process_sample reads this process", "[replicate][process]")
{
    auto const s = read_process_sample(0);
    REQUIRE(s);
    CHECK(s->resident_bytes > 0);
    CHECK(s->virtual_bytes >= s->resident_bytes);
    CHECK(s->open_fds >= 3);
    CHECK(s->max_fds >= s->open_fds);
}
