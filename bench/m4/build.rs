//! Hands the linker script to the linker.
fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it");
    println!("cargo:rustc-link-arg=-T{dir}/m4.ld");
    println!("cargo:rerun-if-changed=m4.ld");
}
