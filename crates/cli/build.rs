//! Link settings of the optional libtorch engine: cargo passes a dependency's link arguments
//! only to that dependency, so the `greenlab` binary sets its own rpath to libtorch (no
//! `LD_LIBRARY_PATH` needed) and, with `torch-cuda`, keeps `libtorch_cuda` linked (otherwise
//! `--as-needed` drops it and CUDA is unavailable at run time).

fn main() {
    println!("cargo:rerun-if-env-changed=DEP_GREENLAB_TORCH_LIBTORCH_LIB");
    println!("cargo:rerun-if-env-changed=DEP_GREENLAB_TORCH_CUDA");
    if let Ok(dir) = std::env::var("DEP_GREENLAB_TORCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
    }
    if std::env::var("DEP_GREENLAB_TORCH_CUDA").as_deref() == Ok("1") {
        for a in ["-Wl,--no-as-needed", "-ltorch_cuda", "-Wl,--as-needed"] {
            println!("cargo:rustc-link-arg={a}");
        }
    }
}
