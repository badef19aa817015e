// Book: chapter 8, "TorchScript" — load the TorchScript FizzBuzz model saved from Python and predict in C++.
//
// Usage: predict MODEL.pt NUMBER [NUMBER ...]
// For each NUMBER (0 .. 1023) prints one line:
//   number=15 label=0 text=FizzBuzz logits=[1.23456789, -0.5, 0.25, -2]
// Exit status: 0 on success, 2 for bad arguments (usage, a number that 10 bits cannot encode), 1 if loading fails.
#include <torch/script.h>

#include <array>
#include <charconv>
#include <iomanip>
#include <iostream>
#include <string>
#include <string_view>
#include <vector>

namespace {

constexpr int kInputSize = 10;  // bits, most significant first (chapter 2's binary_encoder(10))
constexpr std::array<const char*, 3> kLabels = {"FizzBuzz", "Buzz", "Fizz"};

// The number's kInputSize bits, most significant bit first, as floats (the model's input dtype).
std::array<float, kInputSize> binary_encode(int number) {
  std::array<float, kInputSize> bits{};
  for (int i = 0; i < kInputSize; ++i) {
    bits[kInputSize - 1 - i] = static_cast<float>((number >> i) & 1);
  }
  return bits;
}

bool parse_number(std::string_view text, int& number) {
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), number);
  return error == std::errc() && end == text.data() + text.size() && number >= 0 && number < (1 << kInputSize);
}

}  // namespace

int main(int argc, char* argv[]) {
  if (argc < 3) {
    std::cerr << "usage: " << argv[0] << " MODEL.pt NUMBER [NUMBER ...]\n";
    return 2;
  }
  torch::jit::script::Module module;
  try {
    module = torch::jit::load(argv[1]);
  } catch (const c10::Error& error) {
    std::cerr << "cannot load the TorchScript model " << argv[1] << ": " << error.what_without_backtrace() << "\n";
    return 1;
  }
  module.eval();
  torch::NoGradGuard no_grad;  // inference only: no autograd graph

  std::cout << std::setprecision(9);
  for (int arg = 2; arg < argc; ++arg) {
    int number = 0;
    if (!parse_number(argv[arg], number)) {
      std::cerr << "not a number that " << kInputSize << " bits can encode (0.." << (1 << kInputSize) - 1
                << "): " << argv[arg] << "\n";
      return 2;
    }
    auto bits = binary_encode(number);
    // from_blob wraps our buffer without copying: shape (1, 10), float32, like the book's torch::from_blob({1, 10}).
    torch::Tensor input = torch::from_blob(bits.data(), {1, kInputSize}, torch::kFloat32);
    torch::Tensor logits = module.forward({input}).toTensor();  // (1, 4)
    int label = static_cast<int>(logits.argmax(1).item<int64_t>());
    std::string text = label < 3 ? kLabels[label] : std::to_string(number);
    std::cout << "number=" << number << " label=" << label << " text=" << text << " logits=[";
    for (int64_t i = 0; i < logits.size(1); ++i) {
      std::cout << (i ? ", " : "") << logits[0][i].item<float>();
    }
    std::cout << "]\n";
  }
  return 0;
}
