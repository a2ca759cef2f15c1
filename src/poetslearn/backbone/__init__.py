"""The pretrained network. Public faces: `architectures.get_architecture` (the registry),
`load.fetch_backbone` / `load.load_backbone`, `weights.build_backbone` (weights from Keras files,
the codelab's graphs or downloads), `cut.cut_backbone` (the network cut below its top K blocks),
`block_features.with_block_features`, `convert` (the one freeze/convert path) and `onnx`."""
