// Go's two ways of writing a string as text, from one escaper: strconv.Quote (fmt's `%q`), so error texts
// read exactly like Consul's and consul-replicate's, and encoding/json's string encoding, byte for byte,
// as Consul and consul-replicate write their JSON.
#pragma once

#include <string>
#include <string_view>

namespace kvship::gotext {

// Quotes `text` the way Go's strconv.Quote (fmt `%q`) does: wraps it in double quotes, escapes `"`
// and `\`, writes \a \b \f \n \r \t \v, \xNN for other control bytes and invalid UTF-8, \u00NN for
// C1 controls, and keeps other valid UTF-8 as is.
[[nodiscard]] std::string go_quote(std::string_view text);

// Appends `s` as a quoted JSON string, escaped exactly as Go's json.Marshal does (HTML-safe: <, > and &
// as \u003c..., U+2028/U+2029 escaped, invalid UTF-8 as \ufffd).
void append_go_json_string(std::string& out, std::string_view s);

// How Go's encoding/json matches an object key to a struct field when no exact match exists:
// equal under case folding (here ASCII letters, which is all the field names kvship decodes hold).
[[nodiscard]] bool json_field_name_equal(std::string_view key, std::string_view field);

}  // namespace kvship::gotext
