//! greenlab-torch.
