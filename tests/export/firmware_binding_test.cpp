// Every parameter of every loaded firmware module is a tensor the binding
// check can find under the same dotted name: whatever an adapter reports as
// touched (LoRA'd weights, the width a projector or head maps) binds.
#include <gtest/gtest.h>

#include "export/firmware_binding.h"
#include "firmware/demo.h"
#include "firmware/firmware.h"
#include "firmware/module_loader.h"
#include "tests/support/test_util.h"

namespace m4 {
namespace {

TEST(FirmwareBinding, EveryLoadedParameterIsABindableFirmwareTensor) {
  test::TempDir tmp;
  DemoOptions o;
  o.out = tmp / "fw";
  init_demo(o);
  const Firmware fw = Firmware::open(o.out);
  const FirmwareShapes shapes = firmware_shapes(fw);
  for (const auto& [name, mod] : fw.manifest().modules) {
    auto m = load_firmware_module(fw, name);
    int64_t n = 0;
    for (const auto& p : m->named_parameters()) {
      const std::string dotted = name + "." + p.key();
      const auto it = shapes.find(dotted);
      ASSERT_NE(it, shapes.end()) << dotted << " is a parameter of the loaded module but not a firmware tensor name";
      EXPECT_EQ(it->second, p.value().sizes().vec()) << dotted;
      ++n;
    }
    EXPECT_GT(n, 0) << name;
  }
}

}  // namespace
}  // namespace m4
