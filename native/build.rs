//! Link settings for a Node-API addon that declares the Node-API functions by hand.
//!
//! The `napi_*` symbols live in the `node` executable and are bound when Node loads the addon.
//! On Linux a cdylib with undefined symbols links as is; macOS's linker refuses undefined symbols
//! unless told to look them up at load time.
//!
//! This uses `cargo:rustc-cdylib-link-arg` rather than `.cargo/config.toml` rustflags because
//! `napi build` sets `RUSTFLAGS` itself in some cases, and `RUSTFLAGS` replaces config rustflags.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if os == "macos" || os == "ios" {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-undefined,dynamic_lookup");
    }
}
