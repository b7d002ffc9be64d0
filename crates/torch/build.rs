//! Link settings for the libtorch engine.
//!
//! - An rpath to libtorch's lib folder, so this crate's tests and examples find libtorch
//!   without `LD_LIBRARY_PATH`. torch-sys (whose `links` key is `tch`) publishes the folder it
//!   linked against as `DEP_TCH_LIBTORCH_LIB`.
//! - With the `cuda` feature, libtorch_cuda is linked with `--no-as-needed`: nothing in the
//!   binary calls it directly, so the linker would drop it and libtorch would see no GPU.
//!
//! Link arguments apply only to this package's own targets. A binary in another package (the
//! cli) gets the same settings from its own build script, which reads the values re-published
//! here as `DEP_GREENLAB_TORCH_LIBTORCH_LIB` and `DEP_GREENLAB_TORCH_CUDA`.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    if let Some(dir) = std::env::var_os("DEP_TCH_LIBTORCH_LIB") {
        let dir = dir.to_string_lossy();
        println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
        println!("cargo:libtorch_lib={dir}");
    }
    let cuda = std::env::var_os("CARGO_FEATURE_CUDA").is_some();
    if cuda {
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
        println!("cargo:rustc-link-arg=-ltorch_cuda");
        println!("cargo:rustc-link-arg=-Wl,--as-needed");
    }
    println!("cargo:cuda={}", u8::from(cuda));
}
