//! Compiles the Kubernetes CRI v1 API (`proto/api.proto`, copied unchanged from
//! k8s.io/cri-api) into Rust with protox, a protobuf compiler in Rust, so that building
//! Berth needs no system `protoc`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/api.proto");
    let descriptors = protox::compile(["api.proto"], ["proto"])?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .generate_default_stubs(true)
        .compile_fds(descriptors)?;
    Ok(())
}
