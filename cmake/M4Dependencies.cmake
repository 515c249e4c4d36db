# Finds every Debian package m4forge builds against and exposes each as one
# imported target (m4::torch, m4::sentencepiece, ...). CUDA/NCCL are never required.
find_package(Torch REQUIRED)
find_package(spdlog REQUIRED)
find_package(cxxopts REQUIRED)
find_package(nlohmann_json 3.10 REQUIRED)
find_package(Threads REQUIRED)
find_package(OpenSSL REQUIRED COMPONENTS Crypto)
find_package(PkgConfig REQUIRED)
pkg_check_modules(SENTENCEPIECE REQUIRED IMPORTED_TARGET sentencepiece)

add_library(m4_torch INTERFACE)
target_link_libraries(m4_torch INTERFACE ${TORCH_LIBRARIES})
target_include_directories(m4_torch SYSTEM INTERFACE ${TORCH_INCLUDE_DIRS})
separate_arguments(_m4_torch_flags UNIX_COMMAND "${TORCH_CXX_FLAGS}")
target_compile_options(m4_torch INTERFACE ${_m4_torch_flags})
# M4FORGE_CUDA (AUTO, ON, OFF): whether the CUDA-only code (core/device.cpp's
# allocator statistics) is built. AUTO: when this LibTorch has CUDA (a PyTorch
# wheel's, through cluster/build-cuda.sh); Debian's has none. Everything else
# is device-generic and built the same either way.
set(M4FORGE_CUDA AUTO CACHE STRING "Build the CUDA-only parts: AUTO, ON or OFF")
if(TORCH_CUDA_LIBRARIES OR TARGET c10_cuda)
  set(M4_TORCH_HAS_CUDA ON)
else()
  set(M4_TORCH_HAS_CUDA OFF)
endif()
if(M4FORGE_CUDA STREQUAL "ON" AND NOT M4_TORCH_HAS_CUDA)
  message(FATAL_ERROR "M4FORGE_CUDA=ON, but the LibTorch found (${Torch_DIR}) has no CUDA")
endif()
if(M4_TORCH_HAS_CUDA AND NOT M4FORGE_CUDA STREQUAL "OFF")
  set(M4_WITH_CUDA ON)
else()
  set(M4_WITH_CUDA OFF)
endif()
message(STATUS "m4forge: CUDA code ${M4_WITH_CUDA} (LibTorch ${Torch_DIR}, CUDA: ${M4_TORCH_HAS_CUDA})")
add_library(m4::torch ALIAS m4_torch)

# M4FORGE_ONEDNN (AUTO, ON, OFF): f32 GEMMs in oneDNN (core/onednn_gemm.h), the
# library Debian's LibTorch already loads for bf16 (libdnnl-dev). AUTO: when
# its headers and library are found; without it f32 GEMMs stay in the BLAS.
set(M4FORGE_ONEDNN AUTO CACHE STRING "f32 GEMMs in oneDNN: AUTO, ON or OFF")
set(M4_WITH_ONEDNN OFF)
if(NOT M4FORGE_ONEDNN STREQUAL "OFF")
  find_path(M4_DNNL_INCLUDE_DIR oneapi/dnnl/dnnl.hpp)
  find_library(M4_DNNL_LIBRARY dnnl)
  if(M4_DNNL_INCLUDE_DIR AND M4_DNNL_LIBRARY)
    set(M4_WITH_ONEDNN ON)
    add_library(m4_onednn INTERFACE)
    target_include_directories(m4_onednn SYSTEM INTERFACE ${M4_DNNL_INCLUDE_DIR})
    target_link_libraries(m4_onednn INTERFACE ${M4_DNNL_LIBRARY})
    add_library(m4::onednn ALIAS m4_onednn)
  elseif(M4FORGE_ONEDNN STREQUAL "ON")
    message(FATAL_ERROR "M4FORGE_ONEDNN=ON, but oneDNN (oneapi/dnnl/dnnl.hpp, libdnnl) was not found: apt-get install libdnnl-dev")
  endif()
endif()
message(STATUS "m4forge: f32 GEMMs in oneDNN ${M4_WITH_ONEDNN} (${M4_DNNL_LIBRARY})")

find_library(M4_SENTENCEPIECE_TRAIN sentencepiece_train REQUIRED)
add_library(m4_sentencepiece INTERFACE)
target_link_libraries(m4_sentencepiece INTERFACE PkgConfig::SENTENCEPIECE ${M4_SENTENCEPIECE_TRAIN})
add_library(m4::sentencepiece ALIAS m4_sentencepiece)

# Datasets (HDF5 C API, libsndfile for WAV) and task configs (yaml-cpp).
# pkg-config, not FindHDF5: the latter try-compiles C, and this is a C++-only project.
pkg_check_modules(HDF5 REQUIRED IMPORTED_TARGET GLOBAL hdf5-serial)
add_library(m4_hdf5 INTERFACE)
target_link_libraries(m4_hdf5 INTERFACE PkgConfig::HDF5)
add_library(m4::hdf5 ALIAS m4_hdf5)
pkg_check_modules(SNDFILE REQUIRED IMPORTED_TARGET GLOBAL sndfile)
add_library(m4::sndfile ALIAS PkgConfig::SNDFILE)
find_package(yaml-cpp REQUIRED)

# CLIP's tokenizer: Unicode classes, NFC and case mapping from ICU.
pkg_check_modules(ICU REQUIRED IMPORTED_TARGET GLOBAL icu-uc)
add_library(m4::icu ALIAS PkgConfig::ICU)
# Audio resampling in the importers: libsoxr.
pkg_check_modules(SOXR REQUIRED IMPORTED_TARGET GLOBAL soxr)
add_library(m4::soxr ALIAS PkgConfig::SOXR)

# Bundle signatures: Ed25519 and BLAKE2b (minisign's formats) from libsodium.
pkg_check_modules(SODIUM REQUIRED IMPORTED_TARGET GLOBAL libsodium)
add_library(m4::sodium ALIAS PkgConfig::SODIUM)

# `m4forge serve`'s HTTP server: Debian's cpp-httplib, a compiled library whose
# pkg-config Cflags carry the feature defines it was built with.
pkg_check_modules(HTTPLIB REQUIRED IMPORTED_TARGET GLOBAL cpp-httplib)
add_library(m4::httplib ALIAS PkgConfig::HTTPLIB)

# MPI (Open MPI on Debian) for multi-process training; optional at build time.
find_package(MPI COMPONENTS CXX)
