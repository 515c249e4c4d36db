// Shared CLI plumbing: common options (--threads, --log-level), logging setup.
#pragma once

#include <cxxopts.hpp>
#include <filesystem>
#include <string>
#include <vector>

namespace m4 {
struct TrainOptions;
struct ModuleInputs;
class Error;
}

namespace m4::cli {

// Adds --help, --threads, --log-level to a subcommand's options.
void add_common_options(cxxopts::Options& options);
// Parses argv; prints help and returns nullopt-like (false) when --help was given.
bool parse(cxxopts::Options& options, int argc, char** argv, cxxopts::ParseResult* out);
// Applies --log-level and --threads, and logs the BLAS and thread count in use.
void apply_common_options(const cxxopts::ParseResult& r);
// A required string option; throws m4::Error(kInvalidArgument) naming it.
std::string required(const cxxopts::ParseResult& r, const std::string& name);

int run_firmware(int argc, char** argv);
int run_path(int argc, char** argv);
int run_peft(int argc, char** argv);
int run_data(int argc, char** argv);
int run_train(int argc, char** argv);
int run_eval(int argc, char** argv);
int run_report(int argc, char** argv);
int run_serve(int argc, char** argv);
// The repository root a task config belongs to: the nearest ancestor holding
// prompts/templates (configs/tasks/x.yaml -> ../..), else the working directory.
std::filesystem::path repo_root_of(const std::filesystem::path& config);
// One override syntax for every verb that takes a task config: dotted
// `key=value` arguments after the config, positional (`m4forge train CONFIG
// optim.lr=1e-4`, `m4forge peft plan CONFIG --firmware FW train.steps=5`).
void add_config_args(cxxopts::Options& options);
struct ConfigArgs {
  std::filesystem::path config;
  std::vector<std::string> overrides;
};
// The config (the first positional argument, required) and its overrides.
ConfigArgs config_args(const cxxopts::ParseResult& r);
// Only overrides, for a verb that names its config with an option (export --task).
std::vector<std::string> overrides_of(const cxxopts::ParseResult& r);
// A module's input file: a safetensors file of named tensors, or one raw
// input decoded by data/input_file.h (.png -> pixels, .wav/.flac/.ogg -> audio
// at 16 kHz, .csv -> imu).
ModuleInputs module_inputs_of(const std::filesystem::path& file);
// Rethrows `e`; a problem with an input's tensors (kInvalidArgument not yet
// naming it) is prefixed with the input file, so the one line names it.
[[noreturn]] void rethrow_naming_input(const Error& e, const std::filesystem::path& input);
// --firmware DIR, else $M4FORGE_FIRMWARE; an error when neither is given.
std::filesystem::path firmware_dir_option(const cxxopts::ParseResult& r);
// The training loop's options shared by `train` and `train-many`
// (--checkpoint-every, --log-every, --eval-limit, --stop-after), and their values.
void add_train_loop_options(cxxopts::Options& options);
void read_train_loop_options(const cxxopts::ParseResult& r, TrainOptions* out);
int run_train_many(int argc, char** argv);
// keygen, export, verify, compat, run (cli/bundle_cmd.cpp).
int run_bundle_verb(const std::string& verb, int argc, char** argv);

}  // namespace m4::cli
