"""importing: a network from outside (an ONNX file, a PyTorch module) read into a spec.

graph (the readers' small vocabulary of nodes; activations fused, shapes propagated, the walk
into branches) <- onnx (the ONNX reader; the PyTorch reader is mobilecost.torch.fx) ->
statements -> blocks (inverted residuals, SE ratios), attention (MobileNetV4's attention block as
`attn`) -> recognise (the recogniser table) ->
write (the spec, checked against the network) -> compare (layer by layer, `crosscheck --against`).
"""
