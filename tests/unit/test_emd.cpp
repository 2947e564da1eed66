#include <gtest/gtest.h>

#include "palette/emd.hpp"
