// Minimal test harness for the emulator's C++ tests: cases register
// themselves by name; `sim_tests <case>` runs one (pytest runs each in its
// own process, so a fault or a hang-guard kill stays contained).
#pragma once
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "sim/api.h"

namespace simtest {

using CaseFn = bool (*)();
std::map<std::string, CaseFn>& registry();
struct Register {
  Register(const char* n, CaseFn f) { registry()[n] = f; }
};
#define SIM_CASE(name)                                  \
  static bool case_##name();                            \
  static ::simtest::Register reg_##name(#name, case_##name); \
  static bool case_##name()

#define EXPECT(cond, ...)                                              \
  do {                                                                 \
    if (!(cond)) {                                                     \
      fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);  \
      fprintf(stderr, __VA_ARGS__);                                    \
      fprintf(stderr, "\n");                                           \
      return false;                                                    \
    }                                                                  \
  } while (0)

// Runs `run` (which launches and returns the output bytes) under every
// schedule; returns the first schedule whose output differs from forward's
// bit for bit, or "" when all agree. Names the kernels launched.
inline std::string differing_schedule(const std::function<std::vector<char>()>& run) {
  using bk::sim::Schedule;
  const std::pair<Schedule, uint64_t> plan[] = {{Schedule::Forward, 0}, {Schedule::Reverse, 0},
                                                {Schedule::WarpAhead, 0}, {Schedule::WarpAhead, 1},
                                                {Schedule::Random, 1},   {Schedule::Random, 2}};
  std::vector<char> ref;
  std::string found;
  for (auto& [s, seed] : plan) {
    bk::sim::set_schedule(s, seed);
    std::vector<char> out = run();
    if (ref.empty()) ref = out;
    else if (found.empty() && out != ref) found = std::string(bk::sim::schedule_name(s)) + "/" + std::to_string(seed);
  }
  bk::sim::set_schedule(Schedule::Forward, 0);
  std::string names;
  for (auto& n : bk::sim::take_launched_kernels())
    if (names.find(n) == std::string::npos) names += n + " ";
  if (!found.empty()) fprintf(stderr, "race: schedule %s differs from forward in kernel(s) %s\n", found.c_str(), names.c_str());
  return found;
}

template <typename T>
std::vector<char> bytes(const std::vector<T>& v) {
  const char* p = reinterpret_cast<const char*>(v.data());
  return std::vector<char>(p, p + v.size() * sizeof(T));
}

}  // namespace simtest
