// result<T, E>: a value or an error, for failures that depend on input (std::expected is C++23).
#pragma once

#include <type_traits>
#include <utility>
#include <variant>

namespace kvship::prefixes {

// Holds either a T (success) or an E (the reason it failed). value() on an error, or error() on a
// value, throws std::bad_variant_access: check has_value() first.
template <class T, class E>
class [[nodiscard]] result
{
    static_assert(!std::is_same_v<T, E>, "result<T, E> needs distinct types");

public:
    result(T value) : v_(std::in_place_index<0>, std::move(value)) {}

    result(E error) : v_(std::in_place_index<1>, std::move(error)) {}

    [[nodiscard]] bool has_value() const noexcept { return v_.index() == 0; }

    explicit operator bool() const noexcept { return has_value(); }

    [[nodiscard]] T& value() & { return std::get<0>(v_); }

    [[nodiscard]] const T& value() const& { return std::get<0>(v_); }

    [[nodiscard]] T&& value() && { return std::get<0>(std::move(v_)); }

    [[nodiscard]] const E& error() const& { return std::get<1>(v_); }

    [[nodiscard]] E&& error() && { return std::get<1>(std::move(v_)); }

    T* operator->() { return &value(); }

    const T* operator->() const { return &value(); }

    T& operator*() & { return value(); }

    const T& operator*() const& { return value(); }

    bool operator==(const result&) const = default;

private:
    std::variant<T, E> v_;
};

}  // namespace kvship::prefixes
