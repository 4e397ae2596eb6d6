# cmake -DIN=FILE -DOUT=HEADER -DNAME=IDENT -P embed_text.cmake
# Writes HEADER declaring `static const char IDENT[]`: FILE's bytes and a
# terminating NUL, so that C code reads the file's text as a string.
file(READ "${IN}" hex HEX)
string(LENGTH "${hex}" n)
math(EXPR n "${n} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
string(REGEX REPLACE "((0x[0-9a-f][0-9a-f],){16})" "\\1\n    " bytes "${bytes}")
get_filename_component(src "${IN}" NAME)
set(text "/* Generated from ${src} (${n} bytes) by embed_text.cmake; do not edit. */\n")
string(APPEND text "static const char ${NAME}[] = {\n    ${bytes}0x00};\n")
# Rewritten only when it changes, so that its users are not rebuilt for nothing.
if(EXISTS "${OUT}")
  file(READ "${OUT}" old)
endif()
if(NOT old STREQUAL text)
  file(WRITE "${OUT}" "${text}")
endif()
