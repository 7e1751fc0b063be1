//! The webview's footprint. The pages are plain DOM (tables, forms, a
//! terminal): nothing needs the GPU, and nothing is revisited the way a
//! browser revisits pages, so WebKitGTK is told so. Measured with 100
//! containers listed (`cargo xtask bench app`): its web process drops the
//! software GL stack (Mesa's llvmpipe under Xvfb or without a GPU) and the
//! memory caches a browser keeps for back/forward navigation and resources.
//! Other OSes' webviews (WebView2, WKWebView) manage this themselves.

#[cfg(target_os = "linux")]
mod linux {
    /// Before WebKit starts its processes (they inherit the environment):
    /// WebKitGTK 2.50 always sets up EGL (it aborts without), but its DMA-BUF
    /// renderer, which shares GPU buffers between the UI and web processes,
    /// costs both processes ~7 MB for pages that draw no GL. A user's own
    /// setting wins.
    pub fn prepare() {
        if std::env::var_os("WEBKIT_DISABLE_DMABUF_RENDERER").is_none() {
            std::env::set_var("WEBKIT_DISABLE_DMABUF_RENDERER", "1");
        }
    }

    use webkit2gtk::{
        CacheModel, HardwareAccelerationPolicy, SettingsExt, WebContextExt, WebViewExt,
    };

    pub fn apply(window: &tauri::WebviewWindow) {
        let applied = window.with_webview(|w| {
            let view = w.inner();
            if let Some(s) = WebViewExt::settings(&view) {
                // Compositing without a GPU is Mesa's software GL: its
                // buffers and libLLVM's pages, for pages that never animate.
                s.set_hardware_acceleration_policy(HardwareAccelerationPolicy::Never);
                s.set_enable_webgl(false);
                // One page, never navigated away from and back to.
                s.set_enable_page_cache(false);
            }
            if let Some(ctx) = view.context() {
                // The smallest caches: the UI's assets are embedded, not fetched.
                ctx.set_cache_model(CacheModel::DocumentViewer);
            }
        });
        if let Err(e) = applied {
            tracing::warn!(error = %e, "the webview's memory settings");
        }
    }
}

#[cfg(target_os = "linux")]
pub use linux::{apply, prepare};

#[cfg(not(target_os = "linux"))]
pub fn prepare() {}

#[cfg(not(target_os = "linux"))]
pub fn apply(_window: &tauri::WebviewWindow) {}
