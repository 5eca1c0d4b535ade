// Hex text for ids and keys in human-facing places (CLI output, key files).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/util/encoding.h"

namespace lsifs {

std::string HexEncode(ByteSpan bytes);
// Lower-case hex of exactly 2*n digits; nullopt on any other input.
std::optional<Bytes> HexDecode(std::string_view hex);

// 64-bit ids (snapshots, layers, LSIs, keys) are shown as 16 lower-case hex
// digits. No id is ever zero (zero stands for "none" or "latest" inside the
// code), so ParseId refuses all zeros as it refuses any other non-id.
std::string FormatId(uint64_t id);
std::optional<uint64_t> ParseId(std::string_view text);

}  // namespace lsifs
