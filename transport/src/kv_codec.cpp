// The only RapidJSON user in transport. Bodies are parsed in situ (the body string is ours), and
// every Get*() is preceded by its Is*().
#include <gotext/base64.hpp>
#include <transport/consul_codec.hpp>

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <rapidjson/reader.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <fmt/format.h>

#include <algorithm>
#include <utility>

namespace kvship::transport {

namespace {

namespace rj = rapidjson;

constexpr unsigned parse_flags = rj::kParseInsituFlag | rj::kParseIterativeFlag;

consul_error malformed(std::string message)
{
    return consul_error{errc::malformed_response, 0, std::move(message)};
}

std::string_view sv(rj::Value const& v)
{
    return {v.GetString(), v.GetStringLength()};
}

// RapidJSON's in-situ stream ends at a NUL byte, so `[]\0junk` would parse as `[]`; JSON has no raw
// NUL anywhere (Go: "invalid character '\x00'"), so a body holding one is malformed.
std::optional<consul_error> nul_byte(std::string_view body)
{
    if (auto const at = body.find('\0'); at != std::string_view::npos) {
        return malformed(fmt::format("invalid JSON at offset {}: NUL byte", at));
    }
    return std::nullopt;
}

// Parses `body` in place. The document's strings point into `body`, which must outlive it.
consul_result<rj::Document*> parse(rj::Document& doc, std::string& body)
{
    if (body.empty()) {
        return malformed("empty body where JSON was expected");
    }
    if (auto err = nul_byte(body)) {
        return *err;
    }
    doc.ParseInsitu<parse_flags>(body.data());
    if (doc.HasParseError()) {
        return malformed(fmt::format("invalid JSON at offset {}: {}", doc.GetErrorOffset(),
                                     rj::GetParseError_En(doc.GetParseError())));
    }
    return &doc;
}

// Decodes one entry object; `kind` and `pos` name it in errors ("entry 3"), formatted only then.
consul_result<kv_entry> decode_entry(rj::Value const& v, std::string_view kind, std::size_t pos)
{
    auto const where = [&] { return fmt::format("{} {}", kind, pos); };
    if (!v.IsObject()) {
        return malformed(fmt::format("{} is not an object", where()));
    }
    kv_entry e;
    enum : unsigned { f_key = 1, f_value = 2, f_flags = 4, f_create = 8, f_modify = 16, f_lock = 32 };
    unsigned seen = 0;
    for (auto const& m : v.GetObject()) {
        auto const name = sv(m.name);
        auto const& val = m.value;
        auto u64 = [&](std::uint64_t& out, unsigned bit) -> bool {
            if (!val.IsUint64()) {
                return false;
            }
            out = val.GetUint64();
            seen |= bit;
            return true;
        };
        bool ok = true;
        if (name == "Key") {
            ok = val.IsString();
            if (ok) {
                e.key.assign(val.GetString(), val.GetStringLength());
                seen |= f_key;
            }
        } else if (name == "Value") {
            if (val.IsNull()) {
                e.value.reset();
                seen |= f_value;
            } else if (val.IsString()) {
                e.value = gotext::base64_decode(sv(val));
                ok = e.value.has_value();
                seen |= f_value;
            } else {
                ok = false;
            }
        } else if (name == "Flags") {
            ok = u64(e.flags, f_flags);
        } else if (name == "CreateIndex") {
            ok = u64(e.create_index, f_create);
        } else if (name == "ModifyIndex") {
            ok = u64(e.modify_index, f_modify);
        } else if (name == "LockIndex") {
            ok = u64(e.lock_index, f_lock);
        } else if (name == "Session") {
            ok = val.IsString();
            if (ok) {
                e.session.assign(val.GetString(), val.GetStringLength());
            }
        }
        if (!ok) {
            auto const expected = name == "Key" || name == "Session" ? "a string"
                                  : name == "Value"                  ? "null or padded base64"
                                                                     : "an unsigned 64-bit integer";
            return malformed(fmt::format("{}: \"{}\" is not {}", where(), name, expected));
        }
    }
    static constexpr std::pair<unsigned, char const*> required[] = {
        {f_key, "Key"},       {f_value, "Value"},          {f_flags, "Flags"},
        {f_create, "CreateIndex"}, {f_modify, "ModifyIndex"}, {f_lock, "LockIndex"},
    };
    for (auto const& [bit, name] : required) {
        if ((seen & bit) == 0) {
            return malformed(fmt::format("{}: no \"{}\"", where(), name));
        }
    }
    return e;
}

void write_sv(rj::Writer<rj::StringBuffer>& w, std::string_view s)
{
    w.String(s.data(), static_cast<rj::SizeType>(s.size()));
}


// SAX handler for a listing: builds entries straight from the parser's events, with no DOM in
// between (a 100,000-entry listing would otherwise allocate a second copy of itself as Values).
// In-situ parsing makes every string event point into the body.
class listing_handler : public rj::BaseReaderHandler<rj::UTF8<>, listing_handler>
{
public:
    // Entries are appended to `out`; `base` is the number of entries before them in the body (for
    // the positions in error messages).
    explicit listing_handler(std::vector<kv_entry>& out, std::size_t base = 0)
        : out_(out), first_(out.size()), base_(base)
    {
    }

    bool StartArray()
    {
        if (skip_ > 0) {
            return ++skip_, true;
        }
        if (state_ == state::start) {
            state_ = state::in_array;
            return true;
        }
        if (state_ == state::in_entry) {
            return start_unknown_container();
        }
        return fail_entry("is not an object");
    }

    bool EndArray(rj::SizeType)
    {
        if (skip_ > 0) {
            return --skip_, true;
        }
        state_ = state::done;
        return true;
    }

    bool StartObject()
    {
        if (skip_ > 0) {
            return ++skip_, true;
        }
        if (state_ == state::in_array) {
            state_ = state::in_entry;
            cur_ = kv_entry{};
            seen_ = 0;
            return true;
        }
        if (state_ == state::in_entry) {
            return start_unknown_container();
        }
        return fail("a KV listing is not a JSON array");
    }

    bool Key(char const* str, rj::SizeType len, bool)
    {
        if (skip_ == 0) {
            field_ = std::string_view(str, len);
        }
        return true;
    }

    bool EndObject(rj::SizeType)
    {
        if (skip_ > 0) {
            return --skip_, true;
        }
        static constexpr std::pair<unsigned, char const*> required[] = {
            {f_key, "Key"},           {f_value, "Value"},          {f_flags, "Flags"},
            {f_create, "CreateIndex"}, {f_modify, "ModifyIndex"}, {f_lock, "LockIndex"},
        };
        for (auto const& [bit, name] : required) {
            if ((seen_ & bit) == 0) {
                return fail(fmt::format("entry {}: no \"{}\"", position(), name));
            }
        }
        out_.push_back(std::move(cur_));
        state_ = state::in_array;
        return true;
    }

    bool String(char const* str, rj::SizeType len, bool)
    {
        if (skip_ > 0) {
            return true;
        }
        if (state_ != state::in_entry) {
            return fail_entry("is not an object");
        }
        if (field_ == "Key") {
            cur_.key.assign(str, len);
            seen_ |= f_key;
        } else if (field_ == "Value") {
            cur_.value = gotext::base64_decode(std::string_view(str, len));
            if (!cur_.value) {
                return fail_field("null or padded base64");
            }
            seen_ |= f_value;
        } else if (field_ == "Session") {
            cur_.session.assign(str, len);
        } else if (is_known_number()) {
            return fail_field("an unsigned 64-bit integer");
        }
        return true;
    }

    bool Null()
    {
        if (skip_ > 0) {
            return true;
        }
        if (state_ != state::in_entry) {
            return fail_entry("is not an object");
        }
        if (field_ == "Value") {
            cur_.value.reset();
            seen_ |= f_value;
            return true;
        }
        return known_field() ? fail_field(expected()) : true;
    }

    bool Uint(unsigned u) { return Uint64(u); }

    bool Uint64(std::uint64_t u)
    {
        if (skip_ > 0) {
            return true;
        }
        if (state_ != state::in_entry) {
            return fail_entry("is not an object");
        }
        if (field_ == "Flags") {
            return set(cur_.flags, u, f_flags);
        }
        if (field_ == "ModifyIndex") {
            return set(cur_.modify_index, u, f_modify);
        }
        if (field_ == "CreateIndex") {
            return set(cur_.create_index, u, f_create);
        }
        if (field_ == "LockIndex") {
            return set(cur_.lock_index, u, f_lock);
        }
        return known_field() ? fail_field(expected()) : true;
    }

    // Negative, fractional or out-of-range numbers, booleans: never valid for a known field.
    bool Default()
    {
        if (skip_ > 0) {
            return true;
        }
        if (state_ != state::in_entry) {
            return fail_entry("is not an object");
        }
        return known_field() ? fail_field(expected()) : true;
    }

    bool done() const { return state_ == state::done; }
    std::string const& error() const { return error_; }

private:
    enum class state { start, in_array, in_entry, done };
    enum : unsigned { f_key = 1, f_value = 2, f_flags = 4, f_create = 8, f_modify = 16, f_lock = 32 };

    std::vector<kv_entry>& out_;
    std::size_t first_ = 0;  // out_.size() before this body
    std::size_t base_ = 0;
    state state_ = state::start;
    unsigned skip_ = 0;  // depth inside an unknown field's array or object value
    std::string_view field_;
    kv_entry cur_;
    unsigned seen_ = 0;
    std::string error_;

    bool set(std::uint64_t& dst, std::uint64_t v, unsigned bit)
    {
        dst = v;
        seen_ |= bit;
        return true;
    }

    bool is_known_number() const
    {
        return field_ == "Flags" || field_ == "ModifyIndex" || field_ == "CreateIndex" || field_ == "LockIndex";
    }

    bool known_field() const { return is_known_number() || field_ == "Key" || field_ == "Value" || field_ == "Session"; }

    char const* expected() const
    {
        return field_ == "Key" || field_ == "Session" ? "a string"
               : field_ == "Value"                    ? "null or padded base64"
                                                      : "an unsigned 64-bit integer";
    }

    bool start_unknown_container()
    {
        if (known_field()) {
            return fail_field(expected());
        }
        skip_ = 1;
        return true;
    }

    bool fail(std::string message)
    {
        error_ = std::move(message);
        return false;
    }

    std::size_t position() const { return base_ + out_.size() - first_; }

    bool fail_entry(std::string_view what) { return fail(fmt::format("entry {} {}", position(), what)); }

    bool fail_field(std::string_view what)
    {
        return fail(fmt::format("entry {}: \"{}\" is not {}", position(), field_, what));
    }
};

}  // namespace

consul_result<std::vector<kv_entry>> decode_kv_entries(std::string body)
{
    if (body.empty()) {
        return malformed("empty body where JSON was expected");
    }
    if (auto err = nul_byte(body)) {
        return *err;
    }
    std::vector<kv_entry> out;
    out.reserve(body.size() / 160);  // Consul spends ~100 bytes of JSON per entry beyond key and value
    listing_handler handler(out);
    rj::Reader reader;
    rj::InsituStringStream stream(body.data());
    auto const ok = reader.Parse<parse_flags>(stream, handler);
    if (!handler.error().empty()) {
        return malformed(handler.error());
    }
    if (!ok) {
        return malformed(fmt::format("invalid JSON at offset {}: {}", ok.Offset(), rj::GetParseError_En(ok.Code())));
    }
    if (!handler.done()) {
        return malformed("a KV listing is not a JSON array");
    }
    return out;
}

kv_listing_decoder::kv_listing_decoder(std::size_t batch, std::size_t batch_bytes)
    : batch_(std::max<std::size_t>(1, batch)), batch_bytes_(std::max<std::size_t>(1, batch_bytes))
{}

std::optional<consul_error> kv_listing_decoder::error(std::string message)
{
    error_ = malformed(std::move(message));
    ready_.clear();
    buf_.clear();
    return error_;
}

void kv_listing_decoder::begin_element(std::size_t pos, char c)
{
    current_start_ = pos;
    if (pending_count_ == 0) {
        pending_start_ = pos;
    }
    if (c == '{' || c == '[') {
        depth_ = 1;
        in_string_ = false;
        escape_ = false;
        state_ = state::nested;
    } else if (c == '"') {
        escape_ = false;
        state_ = state::string;
    } else {
        state_ = state::scalar;
    }
}

void kv_listing_decoder::end_element(std::size_t end)
{
    pending_end_ = end;
    ++pending_count_;
    state_ = state::after;
}

std::optional<consul_error> kv_listing_decoder::feed(std::string_view bytes)
{
    if (error_) {
        return error_;
    }
    std::size_t const from = buf_.size();
    buf_.append(bytes);
    if (auto e = scan(from)) {
        return e;
    }
    if (pending_count_ >= batch_ || (pending_count_ > 0 && pending_end_ - pending_start_ >= batch_bytes_)) {
        return decode_pending();
    }
    return std::nullopt;
}

// The scanner only finds element boundaries; the decoder judges what is inside them (a bracket
// that does not match makes the element's text invalid JSON, which the decoder reports).
std::optional<consul_error> kv_listing_decoder::scan(std::size_t from)
{
    auto const is_ws = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
    auto const where = [&](std::size_t i) { return consumed_ + i; };
    char const* const data = buf_.data();
    std::size_t const n = buf_.size();
    for (std::size_t i = from; i < n; ++i) {
        char const c = data[i];
        switch (state_) {
            case state::before:
                if (is_ws(c)) {
                    break;
                }
                if (c != '[') {
                    return error("a KV listing is not a JSON array");
                }
                state_ = state::first;
                break;
            case state::first:
            case state::element:
                if (is_ws(c)) {
                    break;
                }
                if (c == ']' && state_ == state::first) {
                    state_ = state::done;
                    break;
                }
                if (c == ']' || c == ',') {
                    return error(fmt::format("invalid JSON at offset {}: expected an array element", where(i))
                    );
                }
                begin_element(i, c);
                break;
            case state::nested:
                if (in_string_) {
                    if (escape_) {
                        escape_ = false;
                    } else if (c == '\\') {
                        escape_ = true;
                    } else if (c == '"') {
                        in_string_ = false;
                    }
                } else if (c == '"') {
                    in_string_ = true;
                } else if (c == '{' || c == '[') {
                    ++depth_;
                } else if (c == '}' || c == ']') {
                    if (--depth_ == 0) {
                        end_element(i + 1);
                    }
                }
                break;
            case state::string:
                if (escape_) {
                    escape_ = false;
                } else if (c == '\\') {
                    escape_ = true;
                } else if (c == '"') {
                    end_element(i + 1);
                }
                break;
            case state::scalar:
                if (!is_ws(c) && c != ',' && c != ']') {
                    break;
                }
                end_element(i);
                [[fallthrough]];
            case state::after:
                if (is_ws(c)) {
                    break;
                }
                if (c == ',') {
                    state_ = state::element;
                } else if (c == ']') {
                    state_ = state::done;
                } else {
                    return error(fmt::format(
                        "invalid JSON at offset {}: expected ',' or ']' after an array element", where(i)
                    ));
                }
                break;
            case state::done:
                if (!is_ws(c)) {
                    return error(
                        fmt::format("invalid JSON at offset {}: bytes after the end of the listing", where(i))
                    );
                }
                break;
        }
    }
    return std::nullopt;
}

std::optional<consul_error> kv_listing_decoder::decode_pending()
{
    if (pending_count_ == 0) {
        return std::nullopt;
    }
    // "[" + the complete elements (with the commas between them) + "]", parsed in place.
    std::string text;
    text.reserve(pending_end_ - pending_start_ + 2);
    text.push_back('[');
    text.append(buf_, pending_start_, pending_end_ - pending_start_);
    text.push_back(']');
    std::size_t const before = ready_.size();
    listing_handler handler(ready_, decoded_);
    rj::Reader reader;
    rj::InsituStringStream stream(text.data());
    auto const ok = reader.Parse<parse_flags>(stream, handler);
    if (!handler.error().empty()) {
        return error(handler.error());
    }
    if (!ok) {
        std::size_t const at = ok.Offset() > 0 ? ok.Offset() - 1 : 0;
        return error(fmt::format(
            "invalid JSON at offset {}: {}", consumed_ + pending_start_ + at, rj::GetParseError_En(ok.Code())
        ));
    }
    decoded_ += ready_.size() - before;
    // Keep only the bytes after the last complete element (the element in progress, if any).
    buf_.erase(0, pending_end_);
    consumed_ += pending_end_;
    bool const in_element = state_ == state::nested || state_ == state::string || state_ == state::scalar;
    current_start_ = in_element ? current_start_ - pending_end_ : 0;
    pending_start_ = current_start_;
    pending_end_ = 0;
    pending_count_ = 0;
    return std::nullopt;
}

std::optional<consul_error> kv_listing_decoder::finish()
{
    if (error_) {
        return error_;
    }
    if (state_ == state::before) {
        return error(
            consumed_ + buf_.size() == 0 ? "empty body where JSON was expected"
                                         : "a KV listing is not a JSON array"
        );
    }
    if (state_ == state::scalar) {
        end_element(buf_.size());
    }
    if (auto e = decode_pending()) {
        return e;
    }
    if (state_ != state::done) {
        return error(fmt::format(
            "invalid JSON at offset {}: the listing ends before its array closes", consumed_ + buf_.size()
        ));
    }
    return std::nullopt;
}

std::vector<kv_entry> kv_listing_decoder::take()
{
    return std::exchange(ready_, {});
}

consul_result<std::vector<std::string>> decode_string_array(std::string body)
{
    rj::Document doc;
    auto p = parse(doc, body);
    if (!p) {
        return p.error();
    }
    if (!doc.IsArray()) {
        return malformed("expected a JSON array of strings");
    }
    std::vector<std::string> out;
    out.reserve(doc.Size());
    std::size_t i = 0;
    for (auto const& v : doc.GetArray()) {
        if (!v.IsString()) {
            return malformed(fmt::format("element {} is not a string", i));
        }
        out.emplace_back(v.GetString(), v.GetStringLength());
        ++i;
    }
    return out;
}

consul_result<txn_outcome> decode_txn_response(std::string body, bool committed)
{
    rj::Document doc;
    auto p = parse(doc, body);
    if (!p) {
        return p.error();
    }
    if (!doc.IsObject()) {
        return malformed("a txn answer is not a JSON object");
    }
    txn_outcome out;
    out.committed = committed;
    auto const results = doc.FindMember("Results");
    if (results != doc.MemberEnd() && !results->value.IsNull()) {
        if (!results->value.IsArray()) {
            return malformed("txn \"Results\" is not an array");
        }
        out.results.reserve(results->value.Size());
        std::size_t i = 0;
        for (auto const& r : results->value.GetArray()) {
            if (!r.IsObject()) {
                return malformed(fmt::format("txn result {} is not an object", i));
            }
            auto const kv = r.FindMember("KV");
            if (kv == r.MemberEnd()) {
                return malformed(fmt::format("txn result {} has no \"KV\"", i));
            }
            auto e = decode_entry(kv->value, "txn result", i);
            if (!e) {
                return e.error();
            }
            out.results.push_back(std::move(*e));
            ++i;
        }
    }
    auto const errors = doc.FindMember("Errors");
    if (errors != doc.MemberEnd() && !errors->value.IsNull()) {
        if (!errors->value.IsArray()) {
            return malformed("txn \"Errors\" is not an array");
        }
        std::size_t i = 0;
        for (auto const& err : errors->value.GetArray()) {
            if (!err.IsObject()) {
                return malformed(fmt::format("txn error {} is not an object", i));
            }
            auto const op = err.FindMember("OpIndex");
            auto const what = err.FindMember("What");
            if (op == err.MemberEnd() || !op->value.IsUint64() || what == err.MemberEnd() ||
                !what->value.IsString()) {
                return malformed(fmt::format("txn error {} needs \"OpIndex\" (uint) and \"What\" (string)", i));
            }
            out.errors.push_back(txn_error_item{static_cast<std::size_t>(op->value.GetUint64()),
                                                std::string(sv(what->value))});
            ++i;
        }
    }
    if (committed && !out.errors.empty()) {
        return malformed("a committed txn (200) lists errors");
    }
    if (!committed && out.errors.empty()) {
        return malformed("a rolled-back txn (409) lists no errors");
    }
    return out;
}

consul_result<agent_info> decode_agent_self(std::string body)
{
    rj::Document doc;
    auto p = parse(doc, body);
    if (!p) {
        return p.error();
    }
    if (!doc.IsObject()) {
        return malformed("agent/self is not a JSON object");
    }
    auto const config = doc.FindMember("Config");
    if (config == doc.MemberEnd() || !config->value.IsObject()) {
        return malformed("agent/self has no \"Config\" object");
    }
    auto const& c = config->value;
    auto const dc = c.FindMember("Datacenter");
    auto const node = c.FindMember("NodeName");
    if (dc == c.MemberEnd() || !dc->value.IsString()) {
        return malformed("agent/self Config.Datacenter is not a string");
    }
    if (node == c.MemberEnd() || !node->value.IsString()) {
        return malformed("agent/self Config.NodeName is not a string");
    }
    return agent_info{std::string(sv(dc->value)), std::string(sv(node->value))};
}

consul_result<bool> decode_bool(std::string body)
{
    rj::Document doc;
    auto p = parse(doc, body);
    if (!p) {
        return p.error();
    }
    if (!doc.IsBool()) {
        return malformed("expected JSON true or false");
    }
    return doc.GetBool();
}

consul_result<std::string> decode_session_id(std::string body)
{
    rj::Document doc;
    auto p = parse(doc, body);
    if (!p) {
        return p.error();
    }
    if (!doc.IsObject()) {
        return malformed("session/create answer is not a JSON object");
    }
    auto const id = doc.FindMember("ID");
    if (id == doc.MemberEnd() || !id->value.IsString() || id->value.GetStringLength() == 0) {
        return malformed("session/create answer has no \"ID\" string");
    }
    return std::string(sv(id->value));
}

consul_result<std::string> decode_session_renew(std::string body)
{
    rj::Document doc;
    auto p = parse(doc, body);
    if (!p) {
        return p.error();
    }
    if (!doc.IsArray() || doc.Size() != 1 || !doc[0].IsObject()) {
        return malformed("session/renew answer is not an array of one session");
    }
    auto const ttl = doc[0].FindMember("TTL");
    if (ttl == doc[0].MemberEnd()) {
        return std::string();
    }
    if (!ttl->value.IsString()) {
        return malformed("session/renew \"TTL\" is not a string");
    }
    return std::string(sv(ttl->value));
}

namespace {

// A member that must be a string (or absent when `optional`); `out` untouched when absent.
consul_result<bool> string_member(
    rj::Value const& obj, char const* name, std::string& out, bool optional, std::string_view where
)
{
    auto const m = obj.FindMember(name);
    if (m == obj.MemberEnd() || (optional && m->value.IsNull())) {
        if (optional) {
            return false;
        }
        return malformed(fmt::format("{} has no \"{}\" string", where, name));
    }
    if (!m->value.IsString()) {
        return malformed(fmt::format("{} \"{}\" is not a string", where, name));
    }
    out.assign(m->value.GetString(), m->value.GetStringLength());
    return true;
}

consul_result<bool> port_member(
    rj::Value const& obj, char const* name, std::uint16_t& out, std::string_view where
)
{
    auto const m = obj.FindMember(name);
    if (m == obj.MemberEnd() || !m->value.IsUint() || m->value.GetUint() > 65535) {
        return malformed(fmt::format("{} \"{}\" is not a port number", where, name));
    }
    out = static_cast<std::uint16_t>(m->value.GetUint());
    return true;
}

consul_result<bool> tags_member(
    rj::Value const& obj, char const* name, std::vector<std::string>& out, std::string_view where
)
{
    auto const m = obj.FindMember(name);
    if (m == obj.MemberEnd() || m->value.IsNull()) {
        return true;
    }
    if (!m->value.IsArray()) {
        return malformed(fmt::format("{} \"{}\" is not an array", where, name));
    }
    for (auto const& t : m->value.GetArray()) {
        if (!t.IsString()) {
            return malformed(fmt::format("{} \"{}\" holds a non-string", where, name));
        }
        out.emplace_back(t.GetString(), t.GetStringLength());
    }
    return true;
}

template <class DecodeOne>
consul_result<std::vector<service_instance>> decode_instances(std::string& body, DecodeOne one)
{
    rj::Document doc;
    auto p = parse(doc, body);
    if (!p) {
        return p.error();
    }
    if (!doc.IsArray()) {
        return malformed("a service listing is not a JSON array");
    }
    std::vector<service_instance> out;
    std::size_t i = 0;
    for (auto const& v : doc.GetArray()) {
        auto const where = fmt::format("instance {}", i++);
        if (!v.IsObject()) {
            return malformed(fmt::format("{} is not an object", where));
        }
        service_instance s;
        if (auto r = one(v, s, where); !r) {
            return r.error();
        }
        if (s.address.empty()) {
            return malformed(fmt::format("{} has no address", where));
        }
        out.push_back(std::move(s));
    }
    return out;
}

bool is_port(std::string_view s)
{
    if (s.empty() || s.size() > 5) {
        return false;
    }
    unsigned n = 0;
    for (char c : s) {
        if (c < '0' || c > '9') {
            return false;
        }
        n = n * 10 + static_cast<unsigned>(c - '0');
    }
    return n <= 65535;
}

}  // namespace

consul_result<std::vector<service_instance>> decode_health_service(std::string body)
{
    return decode_instances(
        body,
        [](rj::Value const& v, service_instance& s, std::string const& where) -> consul_result<bool> {
            auto const node = v.FindMember("Node");
            auto const svc = v.FindMember("Service");
            if (node == v.MemberEnd() || !node->value.IsObject()) {
                return malformed(fmt::format("{} has no \"Node\" object", where));
            }
            if (svc == v.MemberEnd() || !svc->value.IsObject()) {
                return malformed(fmt::format("{} has no \"Service\" object", where));
            }
            std::string name;
            std::string node_address;
            for (auto r :
                 {string_member(node->value, "Node", s.node, false, where + " Node"),
                  string_member(node->value, "Datacenter", s.datacenter, true, where + " Node"),
                  string_member(node->value, "Address", node_address, true, where + " Node"),
                  string_member(svc->value, "Service", name, false, where + " Service"),
                  string_member(svc->value, "Address", s.address, true, where + " Service"),
                  port_member(svc->value, "Port", s.port, where + " Service"),
                  tags_member(svc->value, "Tags", s.tags, where + " Service")}) {
                if (!r) {
                    return r.error();
                }
            }
            if (s.address.empty()) {
                s.address = std::move(node_address);
            }
            return true;
        }
    );
}

consul_result<std::vector<service_instance>> decode_catalog_service(std::string body)
{
    return decode_instances(
        body,
        [](rj::Value const& v, service_instance& s, std::string const& where) -> consul_result<bool> {
            std::string name;
            std::string node_address;
            for (auto r :
                 {string_member(v, "Node", s.node, false, where),
                  string_member(v, "Datacenter", s.datacenter, true, where),
                  string_member(v, "Address", node_address, true, where),
                  string_member(v, "ServiceName", name, false, where),
                  string_member(v, "ServiceAddress", s.address, true, where),
                  port_member(v, "ServicePort", s.port, where),
                  tags_member(v, "ServiceTags", s.tags, where)}) {
                if (!r) {
                    return r.error();
                }
            }
            if (s.address.empty()) {
                s.address = std::move(node_address);
            }
            return true;
        }
    );
}

consul_result<vault_leader> decode_vault_leader(std::string body)
{
    rj::Document doc;
    auto p = parse(doc, body);
    if (!p) {
        return p.error();
    }
    if (!doc.IsObject()) {
        return malformed("sys/leader answer is not a JSON object");
    }
    vault_leader out;
    for (auto [name, slot] :
         {std::pair<char const*, bool*>{"ha_enabled", &out.ha_enabled},
          std::pair<char const*, bool*>{"is_self", &out.is_self}}) {
        auto const m = doc.FindMember(name);
        if (m == doc.MemberEnd()) {
            continue;
        }
        if (!m->value.IsBool()) {
            return malformed(fmt::format("sys/leader \"{}\" is not a boolean", name));
        }
        *slot = m->value.GetBool();
    }
    if (auto r = string_member(doc, "leader_address", out.leader_address, false, "sys/leader"); !r) {
        return r.error();
    }
    auto& a = out.leader_address;
    while (!a.empty() && a.back() == '/') {
        a.pop_back();
    }
    if (a.empty()) {
        return out;
    }
    // http(s)://host:port, nothing else: the address is matched against a map and the catalog.
    std::string_view rest = a;
    if (rest.rfind("https://", 0) == 0) {
        rest.remove_prefix(8);
    } else if (rest.rfind("http://", 0) == 0) {
        rest.remove_prefix(7);
    } else {
        return malformed(
            fmt::format("sys/leader \"leader_address\" {:?} is not an http(s) URL", a.substr(0, 200))
        );
    }
    auto const colon = rest.rfind(':');
    bool ok = colon != std::string_view::npos && colon > 0 && is_port(rest.substr(colon + 1));
    for (char c : rest.substr(0, colon == std::string_view::npos ? rest.size() : colon)) {
        auto const u = static_cast<unsigned char>(c);
        ok = ok && u > 0x20 && u < 0x7F && c != '/' && c != '?' && c != '#' && c != '@';
    }
    if (!ok) {
        return malformed(
            fmt::format("sys/leader \"leader_address\" {:?} is not http(s)://host:port", a.substr(0, 200))
        );
    }
    return out;
}

std::string_view txn_verb_name(txn_verb v)
{
    switch (v) {
    case txn_verb::set: return "set";
    case txn_verb::cas: return "cas";
    case txn_verb::lock: return "lock";
    case txn_verb::unlock: return "unlock";
    case txn_verb::get: return "get";
    case txn_verb::get_or_empty: return "get-or-empty";
    case txn_verb::get_tree: return "get-tree";
    case txn_verb::check_index: return "check-index";
    case txn_verb::check_session: return "check-session";
    case txn_verb::check_not_exists: return "check-not-exists";
    case txn_verb::delete_key: return "delete";
    case txn_verb::delete_cas: return "delete-cas";
    case txn_verb::delete_tree: return "delete-tree";
    }
    return "unknown";
}

std::string encode_txn(std::vector<txn_op> const& ops)
{
    std::size_t estimate = 2;
    for (auto const& op : ops) {
        estimate += 64 + op.key.size() + op.session.size() + (op.value ? gotext::base64_size(op.value->size()) : 0);
    }
    rj::StringBuffer buf;
    buf.Reserve(estimate);
    rj::Writer<rj::StringBuffer> w(buf);
    w.StartArray();
    std::string encoded;
    for (auto const& op : ops) {
        w.StartObject();
        w.Key("KV");
        w.StartObject();
        w.Key("Verb");
        write_sv(w, txn_verb_name(op.verb));
        w.Key("Key");
        write_sv(w, op.key);
        if (op.value) {
            encoded = gotext::base64_encode(*op.value);
            w.Key("Value");
            write_sv(w, encoded);
        }
        bool const writes_flags = op.verb == txn_verb::set || op.verb == txn_verb::cas ||
                                  op.verb == txn_verb::lock || op.verb == txn_verb::unlock;
        if (writes_flags) {
            w.Key("Flags");
            w.Uint64(op.flags);
        }
        bool const has_index =
            op.verb == txn_verb::cas || op.verb == txn_verb::check_index || op.verb == txn_verb::delete_cas;
        if (has_index) {
            w.Key("Index");
            w.Uint64(op.index);
        }
        if (!op.session.empty()) {
            w.Key("Session");
            write_sv(w, op.session);
        }
        w.EndObject();
        w.EndObject();
    }
    w.EndArray();
    return std::string(buf.GetString(), buf.GetSize());
}

std::string encode_session_create(session_params const& p)
{
    rj::StringBuffer buf;
    rj::Writer<rj::StringBuffer> w(buf);
    w.StartObject();
    auto field = [&](char const* name, std::string const& value) {
        if (!value.empty()) {
            w.Key(name);
            write_sv(w, value);
        }
    };
    field("Name", p.name);
    field("TTL", p.ttl);
    field("Behavior", p.behavior);
    field("LockDelay", p.lock_delay);
    field("Node", p.node);
    if (p.node_checks) {
        w.Key("NodeChecks");
        w.StartArray();
        for (auto const& c : *p.node_checks)
            write_sv(w, c);
        w.EndArray();
    }
    w.EndObject();
    return std::string(buf.GetString(), buf.GetSize());
}

}  // namespace kvship::transport
