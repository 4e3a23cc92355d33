#include "api/journal.hpp"

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <sys/file.h>
#include <sys/stat.h>
#include <system_error>
#include <unistd.h>

namespace kvship::kvsim::api {

namespace {

std::runtime_error io_error(std::string_view what, std::string const& path)
{
    return std::runtime_error(fmt::format("{} {}: {}", what, path, std::strerror(errno)));
}

// The whole file, or nullopt when it does not exist.
std::optional<std::string> read_file(std::string const& path)
{
    int const fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) {
            return std::nullopt;
        }
        throw io_error("cannot open", path);
    }
    std::string out;
    char buf[1 << 16];
    for (;;) {
        ssize_t const n = ::read(fd, buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            auto err = io_error("cannot read", path);
            ::close(fd);
            throw err;
        }
        if (n == 0) {
            break;
        }
        out.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fd);
    return out;
}

void write_all(int fd, std::string_view data, std::string const& path)
{
    while (!data.empty()) {
        ssize_t const n = ::write(fd, data.data(), data.size());
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            throw io_error("cannot write", path);
        }
        data.remove_prefix(static_cast<std::size_t>(n));
    }
}

}  // namespace

journal::journal(std::string dir, store& st, std::size_t compact_bytes)
    : dir_(std::move(dir)), compact_bytes_(compact_bytes)
{
    std::error_code ec;
    std::filesystem::create_directories(dir_, ec);
    if (ec) {
        throw std::runtime_error(fmt::format("cannot create data dir {}: {}", dir_, ec.message()));
    }
    std::string const snapshot_path = dir_ + "/snapshot";
    std::string const journal_path = dir_ + "/journal";
    fd_ = ::open(journal_path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) {
        throw io_error("cannot open", journal_path);
    }

    struct closer
    {
        int& fd;
        bool armed = true;

        ~closer()
        {
            if (armed) {
                ::close(fd);
                fd = -1;
            }
        }
    } on_error{fd_};

    if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
        throw std::runtime_error(fmt::format("data dir {} is in use by another consul-kvsim", dir_));
    }
    if (auto snap = read_file(snapshot_path)) {
        if (auto err = st.restore_snapshot(*snap)) {
            throw std::runtime_error(fmt::format("cannot load {}: {}", snapshot_path, *err));
        }
    }
    std::uint64_t valid_bytes = 0;
    if (auto text = read_file(journal_path)) {
        std::string_view rest = *text;
        std::size_t line_no = 0;
        while (!rest.empty()) {
            auto const nl = rest.find('\n');
            if (nl == std::string_view::npos) {
                // A record cut by a crash before its newline was never acknowledged: drop it.
                break;
            }
            ++line_no;
            auto ev = store::decode_event(rest.substr(0, nl));
            if (!ev) {
                throw std::runtime_error(
                    fmt::format("cannot load {}: line {} is not a journal record", journal_path, line_no)
                );
            }
            st.apply_event(*ev);
            ++replayed_;
            rest.remove_prefix(nl + 1);
            valid_bytes += nl + 1;
        }
    }
    if (::ftruncate(fd_, static_cast<off_t>(valid_bytes)) != 0 ||
        ::lseek(fd_, static_cast<off_t>(valid_bytes), SEEK_SET) < 0) {
        throw io_error("cannot open", journal_path);
    }
    on_error.armed = false;
    journal_size_ = valid_bytes;
}

journal::~journal()
{
    if (fd_ >= 0) {
        try {
            flush();
        } catch (std::exception const&) {
            // Nothing left to tell: the owner flushes (and reports) before it lets go.
        }
        ::close(fd_);
    }
}

void journal::append(store_event const& ev)
{
    buffer_ += store::encode_event(ev);
    buffer_.push_back('\n');
    if (buffer_.size() >= (1u << 20)) {
        flush();
    }
}

void journal::flush()
{
    if (buffer_.empty()) {
        return;
    }
    std::string data;
    data.swap(buffer_);
    write_all(fd_, data, dir_ + "/journal");
    journal_size_ += data.size();
}

void journal::compact(store const& st)
{
    flush();
    std::string const tmp = dir_ + "/snapshot.tmp";
    std::string const final_path = dir_ + "/snapshot";
    int const fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        throw io_error("cannot create", tmp);
    }
    try {
        write_all(fd, st.encode_snapshot(), tmp);
        if (::fsync(fd) != 0) {
            throw io_error("cannot sync", tmp);
        }
    } catch (...) {
        ::close(fd);
        throw;
    }
    ::close(fd);
    if (::rename(tmp.c_str(), final_path.c_str()) != 0) {
        throw io_error("cannot rename to", final_path);
    }
    if (::ftruncate(fd_, 0) != 0 || ::lseek(fd_, 0, SEEK_SET) < 0) {
        throw io_error("cannot truncate", dir_ + "/journal");
    }
    journal_size_ = 0;
}

void journal::maybe_compact(store const& st)
{
    if (journal_size_ + buffer_.size() > compact_bytes_) {
        compact(st);
    }
}

}  // namespace kvship::kvsim::api
