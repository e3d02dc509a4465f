"""EfficientNet-Lite0 inference at 160 px, batch 32, 2 threads: cnnlab (contiguous and channels-last) vs efficientnet-lite-pytorch.

Interleaved rounds in one process (the first is a warm-up); prints the median images/s of each.
Run: PYTHONPATH=src python benchmarks/lite0_inference_speed.py  (needs cnnlab[pretrained] and efficientnet-lite-pytorch)
"""
import time, torch
torch.set_num_threads(2)
from cnnlab.models import create_model
from efficientnet_lite_pytorch import EfficientNet
from cnnlab.transfer.pretrained import PRETRAINED, weights_path
ours = create_model("efficientnet_lite0.in1k")
ref = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=str(weights_path(PRETRAINED["efficientnet_lite0.in1k"])),
                                   image_size=None).eval()  # dynamic padding: any input size
x = torch.randn(32, 3, 160, 160)
with torch.no_grad():
    assert (ours(x) - ref(x)).abs().max() < 1e-4
rates = {"cnnlab": [], "cnnlab channels_last": [], "efficientnet-lite-pytorch": []}
oc = create_model("efficientnet_lite0.in1k").to(memory_format=torch.channels_last)
xc = x.contiguous(memory_format=torch.channels_last)
with torch.no_grad():
    for _ in range(4):  # interleaved rounds, first one warm-up
        for name, m, inp in (("cnnlab", ours, x), ("cnnlab channels_last", oc, xc), ("efficientnet-lite-pytorch", ref, x)):
            t = time.perf_counter(); m(inp); rates[name].append(len(x) / (time.perf_counter() - t))
for k, v in rates.items():
    print(f"{k:28s} median {sorted(v[1:])[1]:.1f} images/s (rounds {', '.join(f'{r:.1f}' for r in v[1:])})")
