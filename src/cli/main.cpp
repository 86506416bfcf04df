// Placeholder entry point; the subcommands land in src/cli/*.cpp.
#include <cstdio>
int main() {
  std::puts("autoglm");
  return 0;
}
