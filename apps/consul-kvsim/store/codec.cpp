// Journal events and snapshots as escaped text lines, and their replay (apply_event / restore_snapshot).
//
// One record per line, fields separated by one space. A string field is '=' followed by the bytes with
// every byte <= 0x20, >= 0x7F and '%' written as %XX, so any bytes (NUL, newline) round-trip and the empty
// string is "=". '~' is an absent optional. Numbers are decimal (exact uint64; times are signed
// nanoseconds since the steady clock's epoch).
#include "store/detail.hpp"
#include "store/store.hpp"

#include <fmt/format.h>

#include <charconv>
#include <type_traits>
#include <utility>

namespace kvship::kvsim {

namespace {

constexpr std::string_view snapshot_magic = "kvsim-snapshot 1";

class writer
{
public:
    explicit writer(std::string& out) : out_(out) {}

    writer& tag(std::string_view t)
    {
        out_ += t;
        return *this;
    }

    writer& str(std::string_view s)
    {
        static constexpr char hex[] = "0123456789ABCDEF";
        out_ += " =";
        std::size_t run = 0;  // start of the pending run of bytes that need no escape
        for (std::size_t i = 0; i < s.size(); ++i) {
            auto const c = static_cast<unsigned char>(s[i]);
            if (c <= 0x20 || c >= 0x7F || c == '%') {
                out_.append(s.data() + run, i - run);
                out_.push_back('%');
                out_.push_back(hex[c >> 4]);
                out_.push_back(hex[c & 0xF]);
                run = i + 1;
            }
        }
        out_.append(s.data() + run, s.size() - run);
        return *this;
    }

    writer& opt_str(std::optional<std::string> const& s)
    {
        if (!s) {
            out_ += " ~";
            return *this;
        }
        return str(*s);
    }

    writer& u64(std::uint64_t v) { return number(v); }

    writer& i64(std::int64_t v) { return number(v); }

    writer& opt_time(std::optional<time_point> t)
    {
        if (!t) {
            out_ += " ~";
            return *this;
        }
        return i64(std::chrono::duration_cast<nanos>(t->time_since_epoch()).count());
    }

    writer& strs(std::vector<std::string> const& v)
    {
        u64(v.size());
        for (auto const& s : v) {
            str(s);
        }
        return *this;
    }

    void end() { out_.push_back('\n'); }

private:
    template <typename Int>
    writer& number(Int v)
    {
        char buf[24];
        auto const res = std::to_chars(buf, buf + sizeof buf, v);
        out_.push_back(' ');
        out_.append(buf, res.ptr);
        return *this;
    }

    std::string& out_;
};

class reader
{
public:
    explicit reader(std::string_view line) : rest_(line) {}

    bool ok() const { return ok_; }

    bool done() const { return ok_ && rest_.empty(); }

    std::string_view field()
    {
        if (!ok_ || rest_.empty()) {
            ok_ = false;
            return {};
        }
        auto const sp = rest_.find(' ');
        std::string_view f = rest_.substr(0, sp);
        rest_ = sp == std::string_view::npos ? std::string_view() : rest_.substr(sp + 1);
        if (f.empty()) {
            ok_ = false;
        }
        return f;
    }

    std::string str()
    {
        std::string_view f = field();
        if (!ok_ || f.front() != '=') {
            ok_ = false;
            return {};
        }
        return unescape(f.substr(1));
    }

    std::optional<std::string> opt_str()
    {
        std::string_view f = peek();
        if (f == "~") {
            field();
            return std::nullopt;
        }
        return str();
    }

    std::uint64_t u64()
    {
        std::string_view f = field();
        std::uint64_t v = 0;
        auto [p, ec] = std::from_chars(f.data(), f.data() + f.size(), v);
        if (ec != std::errc() || p != f.data() + f.size()) {
            ok_ = false;
        }
        return v;
    }

    std::int64_t i64()
    {
        std::string_view f = field();
        std::int64_t v = 0;
        auto [p, ec] = std::from_chars(f.data(), f.data() + f.size(), v);
        if (ec != std::errc() || p != f.data() + f.size()) {
            ok_ = false;
        }
        return v;
    }

    std::optional<time_point> opt_time()
    {
        if (peek() == "~") {
            field();
            return std::nullopt;
        }
        return time_point(std::chrono::duration_cast<time_point::duration>(nanos(i64())));
    }

    std::vector<std::string> strs()
    {
        std::uint64_t const n = u64();
        std::vector<std::string> v;
        for (std::uint64_t i = 0; ok_ && i < n; ++i) {
            v.push_back(str());
        }
        return v;
    }

private:
    std::string_view peek() const
    {
        auto const sp = rest_.find(' ');
        return rest_.substr(0, sp);
    }

    static int hexval(char c)
    {
        if (c >= '0' && c <= '9') {
            return c - '0';
        }
        if (c >= 'A' && c <= 'F') {
            return c - 'A' + 10;
        }
        if (c >= 'a' && c <= 'f') {
            return c - 'a' + 10;
        }
        return -1;
    }

    std::string unescape(std::string_view s)
    {
        std::string out;
        out.reserve(s.size());
        for (std::size_t i = 0; i < s.size(); ++i) {
            if (s[i] != '%') {
                out.push_back(s[i]);
                continue;
            }
            if (i + 2 >= s.size()) {
                ok_ = false;
                return {};
            }
            int const hi = hexval(s[i + 1]);
            int const lo = hexval(s[i + 2]);
            if (hi < 0 || lo < 0) {
                ok_ = false;
                return {};
            }
            out.push_back(static_cast<char>(hi * 16 + lo));
            i += 2;
        }
        return out;
    }

    std::string_view rest_;
    bool ok_ = true;
};

std::string_view access_tag(acl_access a)
{
    switch (a) {
        case acl_access::deny:
            return " d";
        case acl_access::read:
            return " r";
        case acl_access::list:
            return " l";
        case acl_access::write:
            return " w";
    }
    return " d";
}

std::optional<acl_access> access_from(std::string_view f)
{
    if (f == "d") {
        return acl_access::deny;
    }
    if (f == "r") {
        return acl_access::read;
    }
    if (f == "l") {
        return acl_access::list;
    }
    if (f == "w") {
        return acl_access::write;
    }
    return std::nullopt;
}

void write_entry(writer& w, kv_entry const& e)
{
    w.tag("put")
        .str(e.key)
        .opt_str(e.value)
        .u64(e.flags)
        .u64(e.lock_index)
        .u64(e.create_index)
        .u64(e.modify_index)
        .str(e.session);
}

void write_service(writer& w, catalog_service const& s)
{
    w.tag("svc").str(s.id).str(s.name).strs(s.tags).str(s.address).i64(s.port).u64(s.meta.size());
    for (auto const& [k, v] : s.meta) {
        w.str(k).str(v);
    }
    w.u64(s.enable_tag_override ? 1 : 0).u64(s.create_index).u64(s.modify_index);
}

void write_check(writer& w, catalog_check const& c)
{
    w.tag("chk")
        .str(c.check_id)
        .str(c.name)
        .str(c.status)
        .str(c.notes)
        .str(c.output)
        .str(c.service_id)
        .str(c.service_name)
        .strs(c.service_tags)
        .str(c.type)
        .str(c.interval)
        .str(c.timeout)
        .i64(c.ttl.count())
        .u64(c.create_index)
        .u64(c.modify_index);
}

void write_event(std::string& out, store_event const& ev)
{
    writer w(out);
    std::visit(
        [&](auto const& x) {
            using T = std::decay_t<decltype(x)>;
            if constexpr (std::is_same_v<T, ev_entry_put>) {
                write_entry(w, x.entry);
            } else if constexpr (std::is_same_v<T, ev_entry_erase>) {
                w.tag("del").str(x.key);
            } else if constexpr (std::is_same_v<T, ev_tombstone>) {
                w.tag("tomb").str(x.key).u64(x.index).opt_time(x.created);
            } else if constexpr (std::is_same_v<T, ev_tombstones_reaped>) {
                w.tag("reap").u64(x.up_to);
            } else if constexpr (std::is_same_v<T, ev_session_put>) {
                auto const& s = x.s;
                w.tag("sput")
                    .str(s.id)
                    .str(s.name)
                    .str(s.node)
                    .i64(s.lock_delay.count())
                    .str(s.behavior == session_behavior::del ? "delete" : "release")
                    .str(s.ttl)
                    .i64(s.ttl_duration.count())
                    .strs(s.node_checks)
                    .strs(s.service_checks)
                    .u64(s.create_index)
                    .u64(s.modify_index)
                    .opt_time(s.expires_at);
            } else if constexpr (std::is_same_v<T, ev_session_erase>) {
                w.tag("sdel").str(x.id);
            } else if constexpr (std::is_same_v<T, ev_index>) {
                w.tag("idx").u64(x.raft_index).u64(x.kvs_table).u64(x.tombstone_table).u64(x.sessions_table);
            } else if constexpr (std::is_same_v<T, ev_acl_policy_put>) {
                auto const& p = x.p;
                w.tag("pol").str(p.id).str(p.name).str(p.rules_text).u64(p.key_rules.size());
                for (auto const& r : p.key_rules) {
                    // 0/1: an exact/prefix key rule; 2/3: the same for a service rule.
                    auto const kind =
                        (r.is_prefix ? 1U : 0U) + (r.resource == acl_resource::service ? 2U : 0U);
                    w.str(r.key).u64(kind).tag(access_tag(r.access));
                }
            } else if constexpr (std::is_same_v<T, ev_acl_token_put>) {
                auto const& t = x.t;
                w.tag("tok")
                    .str(t.accessor_id)
                    .str(t.secret_id)
                    .str(t.description)
                    .strs(t.policy_ids)
                    .u64(t.management ? 1 : 0)
                    .u64(t.local ? 1 : 0);
            } else if constexpr (std::is_same_v<T, ev_service_put>) {
                write_service(w, x.s);
            } else if constexpr (std::is_same_v<T, ev_service_erase>) {
                w.tag("svcdel").str(x.id);
            } else if constexpr (std::is_same_v<T, ev_check_put>) {
                write_check(w, x.c);
            } else if constexpr (std::is_same_v<T, ev_check_erase>) {
                w.tag("chkdel").str(x.id);
            } else if constexpr (std::is_same_v<T, ev_catalog_index>) {
                w.tag("cidx")
                    .u64(x.services_table)
                    .u64(x.checks_table)
                    .u64(x.extinction)
                    .u64(x.services.size());
                for (auto const& [name, idx] : x.services) {
                    w.str(name).u64(idx);
                }
            }
        },
        ev
    );
}

std::optional<store_event> read_event(std::string_view line)
{
    reader r(line);
    std::string_view const tag = r.field();
    if (!r.ok()) {
        return std::nullopt;
    }
    std::optional<store_event> out;
    if (tag == "put") {
        kv_entry e;
        e.key = r.str();
        e.value = r.opt_str();
        e.flags = r.u64();
        e.lock_index = r.u64();
        e.create_index = r.u64();
        e.modify_index = r.u64();
        e.session = r.str();
        out = ev_entry_put{std::move(e)};
    } else if (tag == "del") {
        out = ev_entry_erase{r.str()};
    } else if (tag == "tomb") {
        ev_tombstone t;
        t.key = r.str();
        t.index = r.u64();
        t.created = r.opt_time();
        out = std::move(t);
    } else if (tag == "reap") {
        out = ev_tombstones_reaped{r.u64()};
    } else if (tag == "sput") {
        session s;
        s.id = r.str();
        s.name = r.str();
        s.node = r.str();
        s.lock_delay = nanos(r.i64());
        std::string const b = r.str();
        if (b == "delete") {
            s.behavior = session_behavior::del;
        } else if (b == "release") {
            s.behavior = session_behavior::release;
        } else {
            return std::nullopt;
        }
        s.ttl = r.str();
        s.ttl_duration = nanos(r.i64());
        s.node_checks = r.strs();
        s.service_checks = r.strs();
        s.create_index = r.u64();
        s.modify_index = r.u64();
        s.expires_at = r.opt_time();
        out = ev_session_put{std::move(s)};
    } else if (tag == "sdel") {
        out = ev_session_erase{r.str()};
    } else if (tag == "idx") {
        ev_index x{};
        x.raft_index = r.u64();
        x.kvs_table = r.u64();
        x.tombstone_table = r.u64();
        x.sessions_table = r.u64();
        out = x;
    } else if (tag == "pol") {
        acl_policy p;
        p.id = r.str();
        p.name = r.str();
        p.rules_text = r.str();
        std::uint64_t const n = r.u64();
        for (std::uint64_t i = 0; r.ok() && i < n; ++i) {
            acl_rule rule;
            rule.key = r.str();
            std::uint64_t const pre = r.u64();
            auto const acc = access_from(r.field());
            if (pre > 3 || !acc) {
                return std::nullopt;
            }
            rule.is_prefix = (pre & 1U) != 0;
            rule.resource = (pre & 2U) != 0 ? acl_resource::service : acl_resource::key;
            rule.access = *acc;
            p.key_rules.push_back(std::move(rule));
        }
        out = ev_acl_policy_put{std::move(p)};
    } else if (tag == "tok") {
        acl_token t;
        t.accessor_id = r.str();
        t.secret_id = r.str();
        t.description = r.str();
        t.policy_ids = r.strs();
        std::uint64_t const m = r.u64();
        std::uint64_t const l = r.u64();
        if (m > 1 || l > 1) {
            return std::nullopt;
        }
        t.management = m == 1;
        t.local = l == 1;
        out = ev_acl_token_put{std::move(t)};
    } else if (tag == "svc") {
        catalog_service s;
        s.id = r.str();
        s.name = r.str();
        s.tags = r.strs();
        s.address = r.str();
        s.port = static_cast<int>(r.i64());
        std::uint64_t const n = r.u64();
        for (std::uint64_t i = 0; r.ok() && i < n; ++i) {
            std::string k = r.str();
            s.meta.insert_or_assign(std::move(k), r.str());
        }
        std::uint64_t const eto = r.u64();
        if (eto > 1) {
            return std::nullopt;
        }
        s.enable_tag_override = eto == 1;
        s.create_index = r.u64();
        s.modify_index = r.u64();
        out = ev_service_put{std::move(s)};
    } else if (tag == "svcdel") {
        out = ev_service_erase{r.str()};
    } else if (tag == "chk") {
        catalog_check c;
        c.check_id = r.str();
        c.name = r.str();
        c.status = r.str();
        c.notes = r.str();
        c.output = r.str();
        c.service_id = r.str();
        c.service_name = r.str();
        c.service_tags = r.strs();
        c.type = r.str();
        c.interval = r.str();
        c.timeout = r.str();
        c.ttl = nanos(r.i64());
        c.create_index = r.u64();
        c.modify_index = r.u64();
        out = ev_check_put{std::move(c)};
    } else if (tag == "chkdel") {
        out = ev_check_erase{r.str()};
    } else if (tag == "cidx") {
        ev_catalog_index x;
        x.services_table = r.u64();
        x.checks_table = r.u64();
        x.extinction = r.u64();
        std::uint64_t const n = r.u64();
        for (std::uint64_t i = 0; r.ok() && i < n; ++i) {
            std::string name = r.str();
            x.services.emplace_back(std::move(name), r.u64());
        }
        out = std::move(x);
    } else {
        return std::nullopt;
    }
    if (!r.done()) {
        return std::nullopt;
    }
    return out;
}

}  // namespace

std::string store::encode_event(store_event const& ev)
{
    std::string out;
    write_event(out, ev);
    return out;
}

std::optional<store_event> store::decode_event(std::string_view line)
{
    if (!line.empty() && line.back() == '\n') {
        line.remove_suffix(1);
    }
    return read_event(line);
}

void store::apply_event(store_event const& ev)
{
    std::visit(
        [&](auto const& x) {
            using T = std::decay_t<decltype(x)>;
            if constexpr (std::is_same_v<T, ev_entry_put>) {
                raw_put(x.entry);
            } else if constexpr (std::is_same_v<T, ev_entry_erase>) {
                raw_erase(x.key);
            } else if constexpr (std::is_same_v<T, ev_tombstone>) {
                raw_tombstone(x.key, tomb_info{.index = x.index, .created = x.created});
            } else if constexpr (std::is_same_v<T, ev_tombstones_reaped>) {
                reap_up_to(x.up_to);
            } else if constexpr (std::is_same_v<T, ev_session_put>) {
                sessions_.insert_or_assign(x.s.id, x.s);
            } else if constexpr (std::is_same_v<T, ev_session_erase>) {
                sessions_.erase(x.id);
                session_keys_.erase(x.id);
            } else if constexpr (std::is_same_v<T, ev_index>) {
                raft_index_ = x.raft_index;
                kvs_table_index_ = x.kvs_table;
                tombstone_table_index_ = x.tombstone_table;
                sessions_table_index_ = x.sessions_table;
            } else if constexpr (std::is_same_v<T, ev_acl_policy_put>) {
                policies_.insert_or_assign(x.p.id, x.p);
            } else if constexpr (std::is_same_v<T, ev_acl_token_put>) {
                std::erase_if(tokens_, [&](auto const& kv) {
                    return kv.second.accessor_id == x.t.accessor_id;
                });
                tokens_.insert_or_assign(x.t.secret_id, x.t);
            } else if constexpr (std::is_same_v<T, ev_service_put>) {
                services_.insert_or_assign(x.s.id, x.s);
            } else if constexpr (std::is_same_v<T, ev_service_erase>) {
                services_.erase(x.id);
            } else if constexpr (std::is_same_v<T, ev_check_put>) {
                checks_.insert_or_assign(x.c.check_id, x.c);
                if (x.c.ttl.count() > 0) {
                    // The timer starts again at the next tick(), as a restarted agent's would.
                    auto& t = ttl_timers_[x.c.check_id];
                    t.deadline.reset();
                    t.armed = true;
                } else {
                    ttl_timers_.erase(x.c.check_id);
                }
            } else if constexpr (std::is_same_v<T, ev_check_erase>) {
                checks_.erase(x.id);
                ttl_timers_.erase(x.id);
            } else if constexpr (std::is_same_v<T, ev_catalog_index>) {
                services_table_index_ = x.services_table;
                checks_table_index_ = x.checks_table;
                extinction_index_ = x.extinction;
                for (auto const& [name, idx] : x.services) {
                    if (idx == 0) {
                        service_indexes_.erase(name);
                    } else {
                        service_indexes_.insert_or_assign(name, idx);
                    }
                }
            }
        },
        ev
    );
}

std::string store::encode_snapshot() const
{
    std::string out;
    out.reserve(64 + kv_.size() * 64);
    out += snapshot_magic;
    out.push_back('\n');
    writer(out).tag("ids").u64(id_seed_).u64(id_counter_).end();
    for (auto const& [id, p] : policies_) {
        write_event(out, ev_acl_policy_put{p});
        out.push_back('\n');
    }
    for (auto const& [secret, t] : tokens_) {
        write_event(out, ev_acl_token_put{t});
        out.push_back('\n');
    }
    for (auto const& [id, s] : sessions_) {
        write_event(out, ev_session_put{s});
        out.push_back('\n');
    }
    for (auto const& e : kv_) {
        writer w(out);
        write_entry(w, e);
        w.end();
    }
    for (auto const& [key, t] : tombstones_) {
        writer(out).tag("tomb").str(key).u64(t.index).opt_time(t.created).end();
    }
    for (auto const& [id, s] : services_) {
        write_event(out, ev_service_put{s});
        out.push_back('\n');
    }
    for (auto const& [id, c] : checks_) {
        write_event(out, ev_check_put{c});
        out.push_back('\n');
    }
    if (!services_.empty() || !checks_.empty() || !service_indexes_.empty() || extinction_index_ > 0) {
        ev_catalog_index ci{services_table_index_, checks_table_index_, extinction_index_, {}};
        ci.services.assign(service_indexes_.begin(), service_indexes_.end());
        write_event(out, ci);
        out.push_back('\n');
    }
    write_event(out, ev_index{raft_index_, kvs_table_index_, tombstone_table_index_, sessions_table_index_});
    out.push_back('\n');
    writer(out).tag("end").u64(kv_.size()).end();
    return out;
}

std::optional<std::string> store::restore_snapshot(std::string_view bytes)
{
    store fresh(params_);
    std::size_t line_no = 0;
    bool ended = false;
    while (!bytes.empty()) {
        auto const nl = bytes.find('\n');
        if (nl == std::string_view::npos) {
            return fmt::format("snapshot line {}: no newline at the end", line_no + 1);
        }
        std::string_view const line = bytes.substr(0, nl);
        bytes.remove_prefix(nl + 1);
        ++line_no;
        if (ended) {
            return fmt::format("snapshot line {}: data after the end record", line_no);
        }
        if (line_no == 1) {
            if (line != snapshot_magic) {
                return std::string("not a kvsim snapshot");
            }
            continue;
        }
        if (line.starts_with("ids ")) {
            reader r(line.substr(4));
            fresh.id_seed_ = r.u64();
            fresh.id_counter_ = r.u64();
            if (!r.done()) {
                return fmt::format("snapshot line {}: bad ids record", line_no);
            }
            continue;
        }
        if (line.starts_with("end ")) {
            reader r(line.substr(4));
            std::uint64_t const n = r.u64();
            if (!r.done() || n != fresh.kv_.size()) {
                return fmt::format("snapshot line {}: bad end record", line_no);
            }
            ended = true;
            continue;
        }
        auto ev = read_event(line);
        if (!ev) {
            return fmt::format("snapshot line {}: malformed record", line_no);
        }
        fresh.apply_event(*ev);
    }
    if (!ended) {
        return std::string("snapshot is truncated (no end record)");
    }
    auto observer = std::move(observer_);
    *this = std::move(fresh);
    observer_ = std::move(observer);
    return std::nullopt;
}

}  // namespace kvship::kvsim
