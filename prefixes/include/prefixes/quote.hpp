// Go-compatible string quoting, so error texts read exactly like consul-replicate's `%q`.
#pragma once

#include <string>
#include <string_view>

namespace kvship::prefixes {

// Quotes `text` the way Go's strconv.Quote (fmt `%q`) does: wraps it in double quotes, escapes `"`
// and `\`, writes \a \b \f \n \r \t \v, \xNN for other control bytes and invalid UTF-8, \u00NN for
// C1 controls, and keeps other valid UTF-8 as is.
[[nodiscard]] std::string go_quote(std::string_view text);

}  // namespace kvship::prefixes
