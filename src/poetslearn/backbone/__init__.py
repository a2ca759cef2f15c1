"""The pretrained network: the architectures registry, weights (downloaded, hash-checked or
imported from frozen graphs), TF Hub modules, cutting a network below its top blocks, pooled
features from several blocks, and the network as ONNX."""
