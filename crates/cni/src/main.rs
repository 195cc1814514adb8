//! The `weft-cni` CNI plugin binary: reads CNI_* variables and the network
//! configuration on stdin, prints the result (or error) JSON on stdout.

fn main() {
    std::process::exit(weft_cni::plugin::main());
}
