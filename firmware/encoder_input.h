// What each input encoder reads, declared once: the modality it takes from a
// dataset or a device (image, audio, imu), the tensor its forward takes
// (HF's input name), the front-end between the two (CLIP preprocessing,
// Whisper's log-mel, AST's Kaldi fbank, the IMU window fit), and its forward. `firmware forward`,
// `path` and the task model all dispatch through here.
#pragma once

#include <ATen/ATen.h>

#include <string>

#include "firmware/transformer_encoder.h"

namespace torch::nn {
class Module;
}

namespace m4 {

struct EncoderInputSpec {
  std::string modality;     // the raw input a task feeds: image (B,C,H,W) uint8, audio (B,T) f32 16 kHz, imu (B,T,6) f32
  std::string features;     // what forward takes: pixel_values, input_features, input_values, imu
  std::string raw;          // the raw input `firmware forward` also accepts (pixels, audio); "" when none
  std::string embeds_name;  // the projection output's name in `firmware forward`: image_embeds, ...; "embeds" when none
};

// The spec of an input encoder module (CLIP vision, Whisper encoder, AST,
// IMU); any other module is m4::Error(kInvalidArgument) naming `module`.
EncoderInputSpec encoder_input_spec(const torch::nn::Module& m, const std::string& module);

// The front-end: a raw input of the spec's modality -> the features forward takes.
at::Tensor encoder_features(const torch::nn::Module& m, const at::Tensor& raw);

// forward on the features (the spec's `features` tensor).
EncoderOutput encode_features(torch::nn::Module& m, const at::Tensor& features, bool hidden_states = false);

}  // namespace m4
