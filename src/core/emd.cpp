#include "palette/emd.hpp"
