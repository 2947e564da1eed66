#include <gtest/gtest.h>

#include "palette/color_names.hpp"
