// sp_driver.cc — benchmark driver for Debian's libsentencepiece (the C++
// reference).  Lives only in bench/: never part of the extension.
//
//   sp_driver MODEL CORPUS [REPEAT] [OUT_IDS]
//
// Encodes every line of CORPUS (without its newline) with
// SentencePieceProcessor::Encode(line, &ids), REPEAT times (best time kept),
// and optionally writes the raw SentencePiece ids of the last pass to OUT_IDS
// (per line: uint32 count, then count int32 ids, native byte order).
#include <sentencepiece_processor.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

int main(int argc, char **argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s MODEL CORPUS [REPEAT] [OUT_IDS]\n", argv[0]);
    return 2;
  }
  const int repeat = argc > 3 ? std::atoi(argv[3]) : 3;
  sentencepiece::SentencePieceProcessor sp;
  const auto t_load0 = std::chrono::steady_clock::now();
  const auto status = sp.Load(argv[1]);
  const auto t_load1 = std::chrono::steady_clock::now();
  if (!status.ok()) {
    std::fprintf(stderr, "load: %s\n", status.ToString().c_str());
    return 1;
  }
  std::ifstream in(argv[2], std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string corpus = ss.str();
  std::vector<std::pair<size_t, size_t>> lines;
  for (size_t pos = 0; pos < corpus.size();) {
    size_t nl = corpus.find('\n', pos);
    if (nl == std::string::npos) nl = corpus.size();
    lines.emplace_back(pos, nl - pos);
    pos = nl + 1;
  }

  std::vector<int> ids;
  double best = 1e30;
  size_t tokens = 0;
  for (int r = 0; r < repeat; r++) {
    tokens = 0;
    const auto t0 = std::chrono::steady_clock::now();
    for (const auto &l : lines) {
      sp.Encode(absl::string_view(corpus.data() + l.first, l.second), &ids).IgnoreError();
      tokens += ids.size();
    }
    const auto t1 = std::chrono::steady_clock::now();
    const double s = std::chrono::duration<double>(t1 - t0).count();
    if (s < best) best = s;
  }
  std::printf("sentencepiece: load %.1f ms, lines %zu, bytes %zu, tokens %zu, best of %d: %.3f s, "
              "%.2f MB/s, %.0f tokens/s\n",
              std::chrono::duration<double>(t_load1 - t_load0).count() * 1e3, lines.size(),
              corpus.size(), tokens, repeat, best, corpus.size() / best / 1e6, tokens / best);

  if (argc > 4) {
    FILE *out = std::fopen(argv[4], "wb");
    if (!out) {
      std::perror(argv[4]);
      return 1;
    }
    for (const auto &l : lines) {
      sp.Encode(absl::string_view(corpus.data() + l.first, l.second), &ids).IgnoreError();
      const uint32_t n = ids.size();
      std::fwrite(&n, 4, 1, out);
      std::fwrite(ids.data(), 4, n, out);
    }
    std::fclose(out);
  }
  return 0;
}
