// Linked into palette when OpenCV comes from its static archives (CMakeLists.txt,
// PALETTE_STATIC_OPENCV): libopencv_core.a's OpenGL interop (cv::ogl, which palette never uses)
// refers to these three GLX functions, and linking libGLX for them would bring back the X11
// libraries the static link leaves out. They are never called; if they were, OpenCV would see
// "no OpenGL context" and fail that call.

extern "C" {
void* glXGetCurrentContext() { return nullptr; }
void* glXGetCurrentDisplay() { return nullptr; }
void (*glXGetProcAddressARB(const unsigned char*))() { return nullptr; }
}
