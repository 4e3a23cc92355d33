// ACLs (consul-api.md §11): key rule evaluation, HCL/JSON rule parsing, tokens and policies.
#include "store/detail.hpp"
#include "store/store.hpp"

#include <gotext/hcl_lexer.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <cstdint>
#include <utility>

namespace kvship::kvsim {

namespace {

enum class decision
{
    allow,
    deny,
    fallback
};

// Consul's merge precedence for one path: deny > write > list > read.
int precedence(acl_access a)
{
    switch (a) {
        case acl_access::deny:
            return 4;
        case acl_access::write:
            return 3;
        case acl_access::list:
            return 2;
        case acl_access::read:
            return 1;
    }
    return 0;
}

acl_access merge(acl_access a, acl_access b)
{
    return precedence(a) >= precedence(b) ? a : b;
}

// The rule that governs `key`: an exact rule beats every prefix rule; the longest prefix rule wins otherwise.
std::optional<acl_access> governing(
    std::vector<acl_rule> const& rules, std::string_view key, acl_resource resource = acl_resource::key
)
{
    std::optional<acl_access> exact;
    std::optional<acl_access> prefix;
    std::size_t prefix_len = 0;
    for (auto const& r : rules) {
        if (r.resource != resource) {
            continue;
        }
        if (!r.is_prefix) {
            if (r.key == key) {
                exact = exact ? merge(*exact, r.access) : r.access;
            }
        } else if (key.starts_with(r.key)) {
            if (!prefix || r.key.size() > prefix_len) {
                prefix = r.access;
                prefix_len = r.key.size();
            } else if (r.key.size() == prefix_len) {
                prefix = merge(*prefix, r.access);
            }
        }
    }
    return exact ? exact : prefix;
}

decision enforce(acl_access rule, acl_access required)
{
    switch (rule) {
        case acl_access::write:
            return decision::allow;
        case acl_access::list:
            return required == acl_access::list || required == acl_access::read ? decision::allow
                                                                                : decision::deny;
        case acl_access::read:
            return required == acl_access::read ? decision::allow : decision::deny;
        case acl_access::deny:
            return decision::deny;
    }
    return decision::deny;
}

bool check(
    authorizer const& a, std::string_view key, acl_access required, acl_resource resource = acl_resource::key
)
{
    if (!a.enabled || a.management) {
        return true;
    }
    auto const rule = governing(a.rules, key, resource);
    if (!rule) {
        return a.default_allow;
    }
    return enforce(*rule, required) == decision::allow;
}

}  // namespace

bool authorizer::can_read(std::string_view key) const
{
    return check(*this, key, acl_access::read);
}

bool authorizer::can_list(std::string_view key) const
{
    return check(*this, key, acl_access::list);
}

bool authorizer::can_write(std::string_view key) const
{
    return check(*this, key, acl_access::write);
}

bool authorizer::can_read_service(std::string_view name) const
{
    return check(*this, name, acl_access::read, acl_resource::service);
}

bool authorizer::can_write_service(std::string_view name) const
{
    return check(*this, name, acl_access::write, acl_resource::service);
}

// Consul's KeyWritePrefix: the longest prefix rule covering `prefix` must grant write, and no rule (exact or
// prefix) inside `prefix` may grant less than write; with neither, the default policy decides.
bool authorizer::can_write_prefix(std::string_view prefix) const
{
    if (!enabled || management) {
        return true;
    }
    std::optional<acl_access> parent;
    std::size_t parent_len = 0;
    for (auto const& r : rules) {
        if (r.resource == acl_resource::key && r.is_prefix && prefix.starts_with(r.key)) {
            if (!parent || r.key.size() > parent_len) {
                parent = r.access;
                parent_len = r.key.size();
            } else if (r.key.size() == parent_len) {
                parent = merge(*parent, r.access);
            }
        }
    }
    if (parent && *parent != acl_access::write) {
        return false;
    }
    for (auto const& r : rules) {
        if (r.resource == acl_resource::key && std::string_view(r.key).starts_with(prefix) &&
            r.access != acl_access::write) {
            return false;
        }
    }
    return parent ? true : default_allow;
}

std::string permission_denied_text(authorizer const& acl, std::string_view permission, std::string_view name)
{
    std::string out = "Permission denied";
    if (acl.accessor_id.empty()) {
        out += ": provided token";
    } else {
        out += fmt::format(": token with AccessorID '{}'", acl.accessor_id);
    }
    out += fmt::format(" lacks permission '{}'", permission);
    if (!name.empty()) {
        out += " on " + go_quote(name);
    }
    return out;
}

// ---------------------------------------------------------------- rule parsing (HCL and JSON)

namespace {

// A generic tree for both syntaxes: objects keep repeated keys in order (HCL blocks repeat).
struct hitem;

struct hnode
{
    enum class kind
    {
        scalar,
        object,
        list
    } k = kind::scalar;
    std::string text;
    // hitem, not std::pair: clang 14 needs the pair's hnode complete here, g++ does not
    std::vector<hitem> items;
    std::vector<hnode> elems;
};

struct hitem
{
    std::string first;
    hnode second;
};

std::size_t line_at(std::string_view in, std::size_t pos)
{
    return gotext::hcl_line_col(in, pos).first;
}

struct token
{
    enum class kind
    {
        ident,
        string,
        punct,
        end
    } k = kind::end;
    std::string text;
    std::size_t pos = 0;  // where it starts in the rules
};

// The rules as tokens, lexed by gotext's HCL lexer. Strings follow JSON's escapes (surrogate pairs
// included); digits, `-` and `.` may start an identifier, so numbers are identifiers too.
class lexer
{
public:
    explicit lexer(std::string_view in) : in_(in), lx_(in) {}

    std::optional<std::string> run(std::vector<token>& out)
    {
        while (true) {
            if (lx_.skip_space() != gotext::hcl_lex_error::none) {
                return fmt::format("line {}: unterminated comment", line_at(in_, lx_.pos()));
            }
            std::size_t const start = lx_.pos();
            if (lx_.at_end()) {
                out.push_back({token::kind::end, "", start});
                return std::nullopt;
            }
            char const c = lx_.peek();
            if (c == '"') {
                std::string s;
                auto const err = lx_.string_literal(
                    s, {.interpolation = false, .go_escapes = false, .surrogate_pairs = true}
                );
                if (err != gotext::hcl_lex_error::none) {
                    return string_error(err, start);
                }
                out.push_back({token::kind::string, std::move(s), start});
            } else if (c == '{' || c == '}' || c == '[' || c == ']' || c == '=' || c == ':' || c == ',') {
                out.push_back({token::kind::punct, std::string(1, c), start});
                lx_.advance();
            } else if (gotext::hcl_lexer::is_ident_char(c)) {
                out.push_back({token::kind::ident, std::string(lx_.identifier()), start});
            } else {
                return fmt::format(
                    "line {}: unexpected character {}", line_at(in_, start), go_quote(in_.substr(start, 1))
                );
            }
        }
    }

private:
    std::string string_error(gotext::hcl_lex_error err, std::size_t start) const
    {
        auto const line = line_at(in_, start);
        switch (err) {
            case gotext::hcl_lex_error::incomplete_unicode_escape:
            case gotext::hcl_lex_error::invalid_unicode_escape:
                return fmt::format("line {}: bad \\u escape", line);
            case gotext::hcl_lex_error::bad_surrogate_pair:
                return fmt::format("line {}: bad surrogate pair", line);
            case gotext::hcl_lex_error::unknown_escape:
                return fmt::format("line {}: unknown escape \\{}", line, lx_.peek());
            default:
                return fmt::format("line {}: unterminated string", line);
        }
    }

    std::string_view in_;
    gotext::hcl_lexer lx_;
};

class parser
{
public:
    parser(std::string_view in, std::vector<token> toks) : in_(in), t_(std::move(toks)) {}

    // file := '{' body '}' | body
    std::optional<std::string> file(hnode& root)
    {
        root.k = hnode::kind::object;
        if (is_punct("{")) {
            ++p_;
            if (auto err = body(root, "}")) {
                return err;
            }
            ++p_;
        } else if (auto err = body(root, "")) {
            return err;
        }
        if (t_[p_].k != token::kind::end) {
            return fail("expected end of input");
        }
        return std::nullopt;
    }

private:
    bool is_punct(std::string_view p) const { return t_[p_].k == token::kind::punct && t_[p_].text == p; }

    std::string fail(std::string_view what) const
    {
        auto const& t = t_[p_];
        return fmt::format(
            "line {}: {}, got {}",
            line_at(in_, t.pos),
            what,
            t.k == token::kind::end ? std::string("end of input") : go_quote(t.text)
        );
    }

    // body := { item [','] } until `close` ("" = end of input)
    std::optional<std::string> body(hnode& obj, std::string_view close)
    {
        while (true) {
            if (close.empty() ? t_[p_].k == token::kind::end : is_punct(close)) {
                return std::nullopt;
            }
            if (t_[p_].k == token::kind::end) {
                return fail("unexpected end of input");
            }
            if (auto err = item(obj)) {
                return err;
            }
            if (is_punct(",")) {
                ++p_;
            }
        }
    }

    // item := name ('='|':') value | name {label} '{' body '}'
    std::optional<std::string> item(hnode& obj)
    {
        if (t_[p_].k != token::kind::ident && t_[p_].k != token::kind::string) {
            return fail("expected a name");
        }
        std::string name = t_[p_++].text;
        if (is_punct("=") || is_punct(":")) {
            ++p_;
            hnode v;
            if (auto err = value(v)) {
                return err;
            }
            obj.items.push_back(hitem{std::move(name), std::move(v)});
            return std::nullopt;
        }
        std::vector<std::string> labels;
        while (t_[p_].k == token::kind::string || t_[p_].k == token::kind::ident) {
            labels.push_back(t_[p_++].text);
        }
        if (!is_punct("{")) {
            return fail("expected '=' or '{'");
        }
        if (auto err = too_deep(labels.size() + 1)) {
            return err;
        }
        ++p_;
        hnode inner;
        inner.k = hnode::kind::object;
        if (auto err = body(inner, "}")) {
            return err;
        }
        ++p_;
        depth_ -= labels.size() + 1;
        // `a "b" "c" { ... }` is `a = { "b" = { "c" = { ... } } }`
        for (auto it = labels.rbegin(); it != labels.rend(); ++it) {
            hnode wrap;
            wrap.k = hnode::kind::object;
            wrap.items.push_back(hitem{std::move(*it), std::move(inner)});
            inner = std::move(wrap);
        }
        obj.items.push_back(hitem{std::move(name), std::move(inner)});
        return std::nullopt;
    }

    std::optional<std::string> value(hnode& v)
    {
        auto const& t = t_[p_];
        if (t.k == token::kind::string || t.k == token::kind::ident) {
            v.k = hnode::kind::scalar;
            v.text = t.text;
            ++p_;
            return std::nullopt;
        }
        if (is_punct("{")) {
            if (auto err = too_deep()) {
                return err;
            }
            ++p_;
            v.k = hnode::kind::object;
            if (auto err = body(v, "}")) {
                return err;
            }
            ++p_;
            --depth_;
            return std::nullopt;
        }
        if (is_punct("[")) {
            if (auto err = too_deep()) {
                return err;
            }
            ++p_;
            v.k = hnode::kind::list;
            while (!is_punct("]")) {
                if (t_[p_].k == token::kind::end) {
                    return fail("unterminated list");
                }
                hnode e;
                if (auto err = value(e)) {
                    return err;
                }
                v.elems.push_back(std::move(e));
                if (is_punct(",")) {
                    ++p_;
                }
            }
            ++p_;
            --depth_;
            return std::nullopt;
        }
        return fail("expected a value");
    }

    // Objects, lists and block labels nest at most this deep: a real rule set nests three levels, and a
    // bound keeps hostile rules from overflowing the stack (here and in hnode's destructor).
    static constexpr std::size_t max_nesting = gotext::hcl_max_nesting;


    std::optional<std::string> too_deep(std::size_t more = 1)
    {
        depth_ += more;
        if (depth_ > max_nesting) {
            return fmt::format(
                "line {}: rules nested more than {} levels deep", line_at(in_, t_[p_].pos), max_nesting
            );
        }
        return std::nullopt;
    }

    std::string_view in_;
    std::vector<token> t_;
    std::size_t p_ = 0;
    std::size_t depth_ = 0;
};

// Calls fn(name, object) for an object, or for each object of a list of objects (HCL's JSON form).
template <typename Fn>
std::optional<std::string> each_object(hnode const& v, Fn&& fn)
{
    if (v.k == hnode::kind::object) {
        return fn(v);
    }
    if (v.k == hnode::kind::list) {
        for (auto const& e : v.elems) {
            if (e.k != hnode::kind::object) {
                return std::string("expected an object");
            }
            if (auto err = fn(e)) {
                return err;
            }
        }
        return std::nullopt;
    }
    return std::string("expected an object");
}

std::optional<acl_access> access_of(std::string_view p)
{
    if (p == "read") {
        return acl_access::read;
    }
    if (p == "list") {
        return acl_access::list;
    }
    if (p == "write") {
        return acl_access::write;
    }
    if (p == "deny") {
        return acl_access::deny;
    }
    return std::nullopt;
}

}  // namespace

std::variant<std::vector<acl_rule>, std::string> parse_acl_rules(std::string_view text)
{
    std::vector<token> toks;
    if (auto err = lexer(text).run(toks)) {
        return "Failed to parse ACL rules: " + *err;
    }
    hnode root;
    if (auto err = parser(text, std::move(toks)).file(root)) {
        return "Failed to parse ACL rules: " + *err;
    }
    std::vector<acl_rule> rules;
    for (auto const& item : root.items) {
        // named references, not a structured binding: clang 14 cannot capture a binding in a lambda
        std::string const& kind = item.first;
        hnode const& val = item.second;
        bool const is_key = kind == "key" || kind == "service";
        bool const is_service = kind == "service" || kind == "service_prefix";
        if (!is_key && kind != "key_prefix" && kind != "service_prefix") {
            continue;  // node_prefix, session_prefix, operator, ...: accepted, not used by the sim
        }
        auto err = each_object(val, [&](hnode const& obj) -> std::optional<std::string> {
            for (auto const& [path, body] : obj.items) {
                std::optional<std::string> policy;
                auto inner = each_object(body, [&](hnode const& b) -> std::optional<std::string> {
                    for (auto const& [field, fv] : b.items) {
                        if (field == "policy" && fv.k == hnode::kind::scalar) {
                            policy = fv.text;
                        }
                    }
                    return std::nullopt;
                });
                if (inner) {
                    return fmt::format("{} {}: {}", kind, go_quote(path), *inner);
                }
                auto const access = access_of(policy.value_or(""));
                if (!access) {
                    return fmt::format(
                        "Invalid {} policy: {} for {}", kind, go_quote(policy.value_or("")), go_quote(path)
                    );
                }
                rules.push_back(acl_rule{
                    .key = path,
                    .is_prefix = !is_key,
                    .access = *access,
                    .resource = is_service ? acl_resource::service : acl_resource::key});
            }
            return std::nullopt;
        });
        if (err) {
            if (err->starts_with("Invalid ")) {
                return *err;
            }
            return "Failed to parse ACL rules: " + *err;
        }
    }
    return rules;
}

// ---------------------------------------------------------------- tokens and policies

std::optional<authorizer> store::resolve(std::string_view token) const
{
    auto const& cfg = params_.acl;
    if (!cfg.enabled) {
        return authorizer::allow_all();
    }
    authorizer a;
    a.enabled = true;
    a.default_allow = cfg.default_allow;
    if (!cfg.master_token.empty() && token == cfg.master_token) {
        a.management = true;
        a.accessor_id = "00000000-0000-0000-0000-000000000001";
        return a;
    }
    if (token.empty()) {
        a.accessor_id = std::string(anonymous_accessor_id);
        return a;
    }
    auto it = tokens_.find(token);
    if (it == tokens_.end()) {
        return std::nullopt;
    }
    a.accessor_id = it->second.accessor_id;
    a.management = it->second.management;
    // Merge the policies' rules: one rule per (path, exact/prefix), with Consul's precedence.
    for (auto const& pid : it->second.policy_ids) {
        auto const* p = find_policy(pid);
        if (p == nullptr) {
            continue;
        }
        for (auto const& r : p->key_rules) {
            auto same = std::find_if(a.rules.begin(), a.rules.end(), [&](acl_rule const& x) {
                return x.key == r.key && x.is_prefix == r.is_prefix && x.resource == r.resource;
            });
            if (same == a.rules.end()) {
                a.rules.push_back(r);
            } else {
                same->access = merge(same->access, r.access);
            }
        }
    }
    return a;
}

std::variant<acl_policy, std::string> store::put_policy(std::string_view name, std::string_view rules)
{
    if (name.empty()) {
        return std::string("Invalid Policy: no Name is set");
    }
    auto parsed = parse_acl_rules(rules);
    if (auto const* err = std::get_if<std::string>(&parsed)) {
        return *err;
    }
    acl_policy p;
    p.name = std::string(name);
    p.rules_text = std::string(rules);
    p.key_rules = std::move(std::get<std::vector<acl_rule>>(parsed));
    auto existing = std::find_if(policies_.begin(), policies_.end(), [&](auto const& kv) {
        return kv.second.name == name;
    });
    p.id = existing != policies_.end() ? existing->first : next_id();
    ++raft_index_;
    policies_.insert_or_assign(p.id, p);
    emit(ev_acl_policy_put{p});
    emit_index();
    return p;
}

namespace {

// hashicorp/go-uuid's ParseUUID: 36 characters, dashes at 8, 13, 18, 23, hex digits (either case) elsewhere.
bool is_uuid(std::string_view s)
{
    if (s.size() != 36) {
        return false;
    }
    for (std::size_t i = 0; i < s.size(); ++i) {
        char const c = s[i];
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (c != '-') {
                return false;
            }
        } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) {
            return false;
        }
    }
    return true;
}

}  // namespace

std::variant<acl_token, std::string> store::put_token(acl_token token)
{
    // Consul 1.10's ACL.TokenSet refuses a given SecretID that is not a UUID (found by test_differential.py).
    if (!token.secret_id.empty() && !is_uuid(token.secret_id)) {
        return std::string("Invalid Token: SecretID is not a valid UUID");
    }
    for (auto const& pid : token.policy_ids) {
        if (find_policy(pid) == nullptr) {
            return fmt::format("cannot find policy {}", pid);
        }
    }
    if (token.accessor_id.empty()) {
        token.accessor_id = next_id();
    }
    if (token.secret_id.empty()) {
        token.secret_id = next_id();
    }
    if (auto clash = tokens_.find(token.secret_id);
        clash != tokens_.end() && clash->second.accessor_id != token.accessor_id) {
        return std::string("Invalid Token: SecretID is already in use");
    }
    // Replacing a token: drop the old record (the secret may be unchanged or new).
    std::erase_if(tokens_, [&](auto const& kv) { return kv.second.accessor_id == token.accessor_id; });
    ++raft_index_;
    tokens_.insert_or_assign(token.secret_id, token);
    emit(ev_acl_token_put{token});
    emit_index();
    return token;
}

acl_policy const* store::find_policy(std::string_view id_or_name) const
{
    if (auto it = policies_.find(id_or_name); it != policies_.end()) {
        return &it->second;
    }
    for (auto const& [id, p] : policies_) {
        if (p.name == id_or_name) {
            return &p;
        }
    }
    return nullptr;
}

acl_token const* store::find_token(std::string_view accessor_or_secret) const
{
    if (auto it = tokens_.find(accessor_or_secret); it != tokens_.end()) {
        return &it->second;
    }
    for (auto const& [secret, t] : tokens_) {
        if (t.accessor_id == accessor_or_secret) {
            return &t;
        }
    }
    return nullptr;
}

}  // namespace kvship::kvsim
