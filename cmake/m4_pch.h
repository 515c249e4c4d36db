// Precompiled header shared by the torch-heavy targets: the narrow LibTorch
// headers we use (never <torch/torch.h>) and the common standard headers.
#pragma once
#include <ATen/ATen.h>
#include <torch/nn/module.h>
#include <torch/types.h>

#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>
