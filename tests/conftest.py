import os

# Tests that time kernels use both cores; set before TVM's runtime starts.
os.environ.setdefault("TVM_NUM_THREADS", "2")
