//! WebKitGTK's process-wide settings, read from the environment when its
//! first web view is made (its web and network processes inherit them).
//!
//! Without compositing, WebKitGTK paints the pages on the CPU into the
//! window. With it, every page goes through GL: Mesa's llvmpipe where there
//! is no GPU (Xvfb, VMs, remote desktops) and GPU buffers shared with the UI
//! process where there is one. The pages are tables, forms and a DOM-drawn
//! terminal; nothing animates. Measured with 100 containers listed
//! (`cargo xtask bench app`, Xvfb): the web process goes from 221 to 124 MB
//! PSS and from 93 to 23 MB of anonymous memory. WebKitGTK 2.50 still opens
//! an EGL display in both processes (it aborts without one), so Mesa stays
//! mapped.

/// Before any thread starts (the environment is process-wide) and before
/// the first web view. A value the user set wins, so `=0` brings
/// compositing back.
#[cfg(target_os = "linux")]
pub fn prepare() {
    const COMPOSITING: &str = "WEBKIT_DISABLE_COMPOSITING_MODE";
    if std::env::var_os(COMPOSITING).is_none() {
        std::env::set_var(COMPOSITING, "1");
    }
}

/// WebView2 and WKWebView manage their own compositing.
#[cfg(not(target_os = "linux"))]
pub fn prepare() {}
