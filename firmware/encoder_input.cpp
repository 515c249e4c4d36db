// Input encoders' specs, front-ends and forwards (see encoder_input.h).
#include "firmware/encoder_input.h"

#include "core/error.h"
#include "firmware/ast.h"
#include "firmware/clip.h"
#include "firmware/image_preprocess.h"
#include "firmware/imu_encoder.h"
#include "firmware/kaldi_fbank.h"
#include "firmware/log_mel.h"
#include "firmware/whisper_encoder.h"

namespace m4 {

EncoderInputSpec encoder_input_spec(const torch::nn::Module& m, const std::string& module) {
  if (dynamic_cast<const ClipVisionImpl*>(&m)) return {"image", "pixel_values", "pixels", "image_embeds"};
  if (dynamic_cast<const WhisperEncoderImpl*>(&m)) return {"audio", "input_features", "audio", "embeds"};
  if (dynamic_cast<const AstImpl*>(&m)) return {"audio", "input_values", "audio", "embeds"};
  if (dynamic_cast<const ImuEncoderImpl*>(&m)) return {"imu", "imu", "", "imu_embeds"};
  M4_FAIL(ErrorCode::kInvalidArgument, "module '", module, "' is not an input encoder (img_enc, aud_i_enc, aud_b_enc, imu_enc)");
}

at::Tensor encoder_features(const torch::nn::Module& m, const at::Tensor& raw) {
  if (const auto* v = dynamic_cast<const ClipVisionImpl*>(&m)) {
    at::Tensor px = raw;
    if (px.dim() == 4 && px.size(1) == 1) px = px.expand({px.size(0), 3, px.size(2), px.size(3)});  // grayscale -> RGB
    return clip_preprocess(px.contiguous(), v->config().image_size);
  }
  if (const auto* w = dynamic_cast<const WhisperEncoderImpl*>(&m)) {
    LogMelOptions o;
    o.n_mels = w->config().num_mel_bins;
    o.frames = w->config().frames();
    return whisper_log_mel(raw.to(at::kFloat), o);
  }
  if (const auto* a = dynamic_cast<const AstImpl*>(&m)) {
    return ast_fbank_features(raw.to(at::kFloat), a->config().feature_options());  // (B, max_length, mel)
  }
  if (const auto* i = dynamic_cast<const ImuEncoderImpl*>(&m)) {
    // Windows of another length are zero-padded at the end or cut to the
    // encoder's window: the time scale is kept (no resampling).
    M4_CHECK(raw.dim() == 3 && raw.size(2) == 6, ErrorCode::kInvalidArgument, "IMU input must be (B, T, 6), found ",
             shape_str(raw.sizes()));
    at::Tensor x = raw.to(at::kFloat);
    const int64_t want = i->config().window, have = x.size(1);
    if (have > want) x = x.narrow(1, 0, want);
    if (have < want) x = at::constant_pad_nd(x, {0, 0, 0, want - have});
    return x.contiguous();
  }
  M4_FAIL(ErrorCode::kInvalidArgument, "not an input encoder");
}

EncoderOutput encode_features(torch::nn::Module& m, const at::Tensor& features, bool hidden_states) {
  if (auto* v = dynamic_cast<ClipVisionImpl*>(&m)) return v->forward(features, hidden_states);
  if (auto* w = dynamic_cast<WhisperEncoderImpl*>(&m)) return w->forward(features, hidden_states);
  if (auto* a = dynamic_cast<AstImpl*>(&m)) return a->forward(features, hidden_states);
  if (auto* i = dynamic_cast<ImuEncoderImpl*>(&m)) return i->forward(features, hidden_states);
  M4_FAIL(ErrorCode::kInvalidArgument, "not an input encoder");
}

}  // namespace m4
