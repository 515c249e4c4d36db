#include "firmware/safetensors.h"
#include <gtest/gtest.h>
TEST(Safetensors, Placeholder) { EXPECT_TRUE(m4::dtype_from_name("F32").has_value()); }
