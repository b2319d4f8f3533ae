"""Offline-trained models: training and ONNX export (`autoencoder`, `service_features`,
`train`), the registry of their versions (`registry`), and serving the production version to
a running flow with hot reload (`serving`)."""
