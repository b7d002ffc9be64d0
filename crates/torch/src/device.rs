//! Device names (`cpu`, `cuda`, `cuda:N`) and whether libtorch can use them.

use greenlab_engine::EngineError;

/// Parses a device name: `cpu`, `cuda` (the first GPU) or `cuda:N`. Availability is checked
/// separately, when an engine is created.
pub fn parse_device(name: &str) -> Result<tch::Device, EngineError> {
    let bad = |message: String| EngineError::Device {
        device: name.to_string(),
        message,
    };
    match name.trim().to_ascii_lowercase().as_str() {
        "cpu" => Ok(tch::Device::Cpu),
        "cuda" | "gpu" => Ok(tch::Device::Cuda(0)),
        other => match other.strip_prefix("cuda:") {
            Some(index) => index.parse::<usize>().map(tch::Device::Cuda).map_err(|_| {
                bad(format!(
                    "{index:?} is not a GPU index; use cuda:0, cuda:1, …"
                ))
            }),
            None => Err(bad(
                "unknown device name; use cpu, cuda or cuda:N".to_string()
            )),
        },
    }
}

/// Checks that libtorch can run on `device`, naming the fix when it cannot.
pub(crate) fn check_available(name: &str, device: tch::Device) -> Result<(), EngineError> {
    let tch::Device::Cuda(index) = device else {
        return Ok(());
    };
    let linked = if cfg!(feature = "cuda") {
        ""
    } else {
        " (this binary was built without the torch engine's `cuda` feature, which links \
         libtorch_cuda: rebuild with it on a machine with CUDA-enabled libtorch)"
    };
    if !tch::Cuda::is_available() {
        return Err(EngineError::Device {
            device: name.to_string(),
            message: format!(
                "libtorch sees no CUDA device{linked}; check the NVIDIA driver with nvidia-smi, \
                 or use --device cpu"
            ),
        });
    }
    let count = usize::try_from(tch::Cuda::device_count()).unwrap_or(0);
    if index >= count {
        return Err(EngineError::Device {
            device: name.to_string(),
            message: format!(
                "there {} only {count} CUDA device{}; use cuda:0 … cuda:{}",
                if count == 1 { "is" } else { "are" },
                if count == 1 { "" } else { "s" },
                count.saturating_sub(1)
            ),
        });
    }
    Ok(())
}

/// The canonical name of a device (`cpu`, `cuda:N`).
pub(crate) fn label(device: tch::Device) -> String {
    match device {
        tch::Device::Cuda(index) => format!("cuda:{index}"),
        // parse_device makes nothing else
        _ => "cpu".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_names_parse() {
        assert_eq!(parse_device("cpu").unwrap(), tch::Device::Cpu);
        assert_eq!(parse_device(" CPU ").unwrap(), tch::Device::Cpu);
        assert_eq!(parse_device("cuda").unwrap(), tch::Device::Cuda(0));
        assert_eq!(parse_device("cuda:3").unwrap(), tch::Device::Cuda(3));
        for bad in ["", "tpu", "cuda:", "cuda:-1", "cuda:x", "cuda:1:2"] {
            assert!(
                matches!(parse_device(bad), Err(EngineError::Device { .. })),
                "{bad:?} was accepted"
            );
        }
    }

    #[test]
    fn labels_are_canonical() {
        assert_eq!(label(tch::Device::Cpu), "cpu");
        assert_eq!(label(parse_device("cuda").unwrap()), "cuda:0");
        assert_eq!(label(tch::Device::Cuda(2)), "cuda:2");
    }

    #[test]
    fn cpu_is_always_available() {
        assert!(check_available("cpu", tch::Device::Cpu).is_ok());
    }
}
