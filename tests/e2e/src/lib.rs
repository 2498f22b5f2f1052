//! placeholder: the e2e harness is being built
