#include "palette/color_names.hpp"
