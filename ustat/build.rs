//! Builds the eBPF programs (`ustat-ebpf`) with the pinned nightly; `src/bpf.rs` embeds them.

/// The nightly verified to build aya-ebpf 0.2.1 with LLVM 22, matching bpf-linker's LLVM.
/// `scripts/setup` installs it (with rust-src).
const EBPF_TOOLCHAIN: &str = "nightly-2026-05-20";

fn main() -> anyhow::Result<()> {
    let here = std::path::PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let ebpf_dir = here.join("../ustat-ebpf");
    let common_dir = here.join("../ustat-common");
    // aya-build watches the eBPF crate; the shared types live next door.
    println!("cargo:rerun-if-changed={}", common_dir.display());
    let ebpf_dir = ebpf_dir
        .to_str()
        .ok_or_else(|| anyhow::anyhow!("non-UTF-8 path"))?;
    aya_build::build_ebpf(
        [aya_build::Package {
            name: "ustat-ebpf",
            root_dir: ebpf_dir,
            ..Default::default()
        }],
        aya_build::Toolchain::Custom(EBPF_TOOLCHAIN),
    )
}
