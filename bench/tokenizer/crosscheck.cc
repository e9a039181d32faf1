// crosscheck.cc — differential test of our tokenizer against Debian's
// libsentencepiece on random text (lives only in bench/).
//
//   crosscheck MODEL [N_STRINGS] [SEED]
//
// Generates N random byte strings (ASCII, French letters, punctuation,
// spaces of every kind, "▁", NFKC-affected characters, emojis, CJK, control
// characters, malformed UTF-8, fragments of the model's own pieces), encodes
// each with SentencePieceProcessor::Encode and with cb_tokenizer_encode
// (add_special_tokens = false) and checks that the ids agree in CamemBERT id
// space (sp 0 -> 3, else sp + 4).  Strings that contain a CamemBERT added
// token are skipped (the CamemBERT layer splits them first).
#include <sentencepiece_processor.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

extern "C" {
#include "tokenizer.h"
}

static const char *kFragments[] = {
    "a", "e", "é", "è", "ê", "à", "ç", "ù", "ô", "œ", "É", "À", "Ç", "t", "s", "n", "L", "l'", "qu'",
    " ", " ", " ", "  ", "\t", "\n", "\r", "\xc2\xa0", "\xe2\x80\xaf", "\xe3\x80\x80", "\xe2\x80\x8b",
    "\xe2\x80\xa8", "\x0b", "\x0c", "\xe2\x96\x81", "\xe2\x96\x81\xe2\x96\x81", ".", ",", "!", "?", ";",
    ":", "'", "\xe2\x80\x99", "\xca\xbc", "-", "--", "(", ")", "[", "]", "\"", "\xc2\xab", "\xc2\xbb",
    "1", "23", "\xc2\xb2", "\xe2\x91\xa0", "\xc2\xbd", "\xe2\x80\xa6", "\xef\xac\x81", "\xef\xbc\xa1",
    "\xef\xbd\x81", "e\xcc\x81", "a\xcc\x80", "\xe2\x85\xa2", "\xf0\x9d\x90\x80", "\xef\xbd\xb6",
    "\xf0\x9f\x98\x80", "\xf0\x9f\x91\x8d\xf0\x9f\x8f\xbd", "\xe4\xb8\xad", "\xe6\x96\x87", "\xd0\x9f",
    "\xce\xb1", "\xd8\xb9", "\xe2\x80\x8d", "\xc2\xad", "\xc2\x85", "\x01", "\x07", "\x7f", "\x00",
    "\xff", "\xfe", "\xc3", "\xe2\x96", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xc0\xaf", "\xef\xbf\xbd",
    "\xf0\x9f", "\x80", "\xbf", "Bonjour", " le ", " la ", " de ", "ment", "tion", "ées", " chat",
    "<", ">", "&", "sep", "<sep>", "<ctl>", "abc", "ent", "\xe2\x96\x81le",
};

static bool has_added_token(const std::string &s) {
  static const char *toks[] = {"<s>", "</s>", "<pad>", "<unk>", "<mask>"};
  for (const char *t : toks)
    if (s.find(t) != std::string::npos) return true;
  return false;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s MODEL [N_STRINGS] [SEED]\n", argv[0]);
    return 2;
  }
  const long n_strings = argc > 2 ? std::atol(argv[2]) : 100000;
  const unsigned seed = argc > 3 ? (unsigned)std::atol(argv[3]) : 1;

  sentencepiece::SentencePieceProcessor sp;
  const auto status = sp.Load(argv[1]);
  if (!status.ok()) {
    std::fprintf(stderr, "sentencepiece load: %s\n", status.ToString().c_str());
    return 1;
  }
  std::ifstream in(argv[1], std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string model = ss.str();
  void *image = nullptr;
  size_t image_len = 0;
  cb_tokenizer tok;
  cb_error err;
  if (cb_tokenizer_build((const uint8_t *)model.data(), model.size(), &image, &image_len, &err) != CB_OK ||
      cb_tokenizer_open(image, image_len, &tok, &err) != CB_OK) {
    std::fprintf(stderr, "ours: %s\n", err.message);
    return 1;
  }
  cb_tok_workspace *ws = cb_tok_workspace_create();

  std::vector<std::string> pieces;
  for (int i = 0; i < sp.GetPieceSize(); i++) pieces.push_back(sp.IdToPiece(i));

  std::mt19937 rng(seed);
  const size_t n_frag = sizeof(kFragments) / sizeof(kFragments[0]);
  long compared = 0, skipped = 0, mismatched = 0;
  std::vector<int> sp_ids;
  for (long t = 0; t < n_strings; t++) {
    std::string s;
    const int parts = 1 + rng() % (t % 10 == 0 ? 200 : 12);
    for (int p = 0; p < parts; p++) {
      const unsigned kind = rng() % 10;
      if (kind < 6) {
        s += kFragments[rng() % n_frag];
      } else if (kind < 8) {
        std::string piece = pieces[rng() % pieces.size()];
        // pieces use "▁" for spaces: sometimes put a real space back
        if (rng() % 2) {
          size_t pos;
          while ((pos = piece.find("\xe2\x96\x81")) != std::string::npos) piece.replace(pos, 3, " ");
        }
        s += piece;
      } else if (kind < 9) {
        s += (char)(rng() % 256);
      } else {
        s += (char)(0x20 + rng() % 95);
      }
    }
    if (has_added_token(s)) {
      skipped++;
      continue;
    }
    sp.Encode(absl::string_view(s.data(), s.size()), &sp_ids).IgnoreError();
    const int32_t *ids;
    size_t n;
    if (cb_tokenizer_encode_ws(&tok, ws, s.data(), s.size(), false, 0, &ids, &n, nullptr, &err) != CB_OK) {
      std::fprintf(stderr, "ours failed: %s\n", err.message);
      return 1;
    }
    bool same = n == sp_ids.size();
    for (size_t k = 0; same && k < n; k++) same = ids[k] == (sp_ids[k] == 0 ? 3 : sp_ids[k] + 4);
    compared++;
    if (!same) {
      if (mismatched < 5) {
        std::fprintf(stderr, "MISMATCH on \"");
        for (unsigned char c : s) std::fprintf(stderr, c < 0x20 || c >= 0x7f ? "\\x%02x" : "%c", c);
        std::fprintf(stderr, "\"\n  sp  :");
        for (int id : sp_ids) std::fprintf(stderr, " %d", id == 0 ? 3 : id + 4);
        std::fprintf(stderr, "\n  ours:");
        for (size_t k = 0; k < n; k++) std::fprintf(stderr, " %d", ids[k]);
        std::fprintf(stderr, "\n");
      }
      mismatched++;
    }
  }
  std::printf("crosscheck %s: %ld strings compared, %ld different, %ld skipped (added tokens)\n", argv[1],
              compared, mismatched, skipped);
  cb_tok_workspace_destroy(ws);
  cb_free(image);
  return mismatched ? 3 : 0;
}
