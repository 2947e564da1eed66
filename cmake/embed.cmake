# Turns a file into a C++ source defining `const std::string& NAME()` with its bytes.
#   cmake -DIN=file -DOUT=file.cpp -DNAME=palette::page_html -P embed.cmake
file(READ "${IN}" content HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${content}")
string(REGEX REPLACE "(0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,)" "\\1\n" bytes "${bytes}")
string(REGEX REPLACE "::[^:]*$" "" ns "${NAME}")
string(REGEX REPLACE "^.*::" "" fn "${NAME}")
file(WRITE "${OUT}" "// Generated from ${IN} by cmake/embed.cmake: do not edit.\n#include <string>\n\nnamespace ${ns} {\nnamespace {\nconst unsigned char kData[] = {\n${bytes}\n};\n}  // namespace\n\nconst std::string& ${fn}() {\n  static const std::string s(reinterpret_cast<const char*>(kData), sizeof kData);\n  return s;\n}\n\n}  // namespace ${ns}\n")
