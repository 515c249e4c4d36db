// `m4forge firmware quantize`: a firmware whose frozen layer projections are
// stored quantized (firmware/quantized_weight.h), a firmware of its own: its
// own firmware_id over its actual bytes and a derived_from record naming the
// source's id, the method, bits and group size (docs/firmware-format.md).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "firmware/firmware.h"

namespace m4 {

struct QuantizeOptions {
  std::filesystem::path source;  // a firmware directory (not itself quantized)
  std::filesystem::path out;     // must not exist, or be empty
  int bits = 8;                  // 8: INT8; 4: two per byte
  int64_t group_size = -1;       // columns per scale; 0 per output channel; -1: 0 for 8 bits, 64 for 4 bits
  std::vector<std::string> modules = {fwkeys::kBackbone};
  std::string name;     // default: the source's name + "-int8" / "-int4"
  std::string version;  // default: the source's version
  // Weights with fewer elements stay as they are (too small to matter).
  int64_t min_elements = 1024;
};

// The group size `o` resolves to.
int64_t quantize_group_size(const QuantizeOptions& o);

// Re-hashes the source's modules (the derived_from id must be true), then
// writes the quantized firmware atomically. Modules not chosen are copied as
// they are. Throws m4::Error naming the problem.
FirmwareManifest quantize_firmware(const QuantizeOptions& o);

}  // namespace m4
