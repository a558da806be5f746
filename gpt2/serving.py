"""The course's GPT-2 as a MAX custom architecture, for ``max serve`` (step 14's plumbing).

MAX's serving stack batches requests into one *ragged* run: the new tokens of every
request in the batch, one after the other, with ``input_row_offsets`` marking where each
request starts; the keys and values of earlier tokens live in MAX's paged KV cache. This
module holds everything step 14's model needs around it and that the chapter does not
teach: the architecture's config (read from HuggingFace's config.json), the weight
adapter (step 11's conversion of a checkpoint), the pipeline model that compiles the
module, and the ``SupportedArchitecture`` that registers it with MAX.

The served model class is step 14's reference or the learner's (``python -m gpt2 serve
--mine``): MAX builds the model in a worker process, so the choice travels in the
environment (``served_class``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from max.dtype import DType
from max.experimental.nn import Module
from max.experimental.tensor import Tensor
from max.graph import DeviceRef
from max.graph.weights import WeightData, Weights, WeightsFormat
from max.nn.kv_cache import KVCacheParams, PagedCacheValues
from max.nn.transformer import ReturnLogits
from max.pipelines.architectures.llama3_modulev3.batch_processor import (
    Llama3ModuleV3BatchProcessor as RaggedBatchProcessor,  # tokens, offsets, n_logits, cache
)
from max.pipelines.context import TextContext
from max.pipelines.kv_cache import cache_dtype_for_encoding
from max.pipelines.kv_cache.memory_planner import PagedMemoryPlanner
from max.pipelines.lib import (
    KVCacheConfig,
    MAXModelConfig,
    ModuleV3Outputs,
    ModuleV3PipelineModelWithKVCache,
    PipelineConfig,
    SupportedArchitecture,
    TextTokenizer,
)
from max.pipelines.lib.interfaces.arch_config import (
    ArchConfigWithKVCache,
    ArchConfigWithStoredKVParams,
)
from max.pipelines.modeling.config_enums import SupportedEncoding, supported_encoding_dtype
from max.pipelines.modeling.types import PipelineTask

from gpt2 import max_internals
from gpt2.checkpoint import config_fields
from gpt2.course import LearnerSteps

# The name HuggingFace's config.json gives GPT-2 under "architectures": MAX looks it up.
ARCHITECTURE_NAME = "GPT2LMHeadModel"
# Which module ``max serve`` takes the served model class from, and which step files
# replace the references (``--mine``): set by ``python -m gpt2 serve`` for its server.
SOURCE_VARIABLE = "GPT2_SERVE_SOURCE"
STEPS_VARIABLE = "GPT2_SERVE_STEPS"


@dataclass(kw_only=True)
class GPT2ServingConfig(ArchConfigWithStoredKVParams, ArchConfigWithKVCache):
    """What MAX's pipeline needs to know about the checkpoint, and the course's config."""

    DEFAULT_ENCODING: ClassVar[SupportedEncoding] = "float32"
    SUPPORTED_ENCODINGS: ClassVar[set[SupportedEncoding]] = {"float32", "bfloat16"}

    fields: dict[str, Any]  # GPT2Config's fields, from config.json
    max_seq_len: int
    dtype: DType
    kv_params: KVCacheParams
    devices: list[DeviceRef]

    @staticmethod
    def get_num_layers(huggingface_config) -> int:
        return int(huggingface_config.n_layer)

    @staticmethod
    def get_head_dim(huggingface_config) -> int:
        return int(huggingface_config.n_embd // huggingface_config.n_head)

    @classmethod
    def construct_kv_params(
        cls,
        huggingface_config,
        pipeline_config: PipelineConfig,
        devices: list[DeviceRef],
        kv_cache_config: KVCacheConfig,
        cache_dtype: DType,
        *,
        allow_kv_head_replication: bool = False,
    ) -> KVCacheParams:
        # GPT-2 gives every query head its own key and value head.
        return kv_cache_config.to_params(
            dtype=cache_dtype,
            allow_kv_head_replication=allow_kv_head_replication,
            n_kv_heads=int(huggingface_config.n_head),
            head_dim=cls.get_head_dim(huggingface_config),
            num_layers=cls.get_num_layers(huggingface_config),
            devices=devices,
            data_parallel_degree=pipeline_config.model.data_parallel_degree,
        )

    @classmethod
    def initialize(
        cls,
        pipeline_config: PipelineConfig,
        model_config: MAXModelConfig | None = None,
        *,
        max_seq_len: int,
    ) -> GPT2ServingConfig:
        model_config = model_config or pipeline_config.model
        hf = model_config.huggingface_config
        if hf is None:
            raise ValueError(f"{model_config.model_path} has no config.json")
        encoding = max_internals.select_encoding(model_config, cls.DEFAULT_ENCODING)
        devices = [DeviceRef(spec.device_type, spec.id) for spec in model_config.device_specs]
        cache_dtype = cache_dtype_for_encoding(encoding, model_config.kv_cache.kv_cache_format)
        return cls(
            fields=config_fields(hf.to_dict()),
            max_seq_len=max_seq_len,
            dtype=supported_encoding_dtype(encoding),
            kv_params=cls.construct_kv_params(
                hf, pipeline_config, devices, model_config.kv_cache, cache_dtype
            ),
            devices=devices,
        )


def paged_cache(kv_params: KVCacheParams, flat: tuple[Tensor, ...]) -> PagedCacheValues:
    """The cache's graph inputs, as MAX hands them over flat, back into their structure."""
    (per_device,) = kv_params.unflatten_kv_inputs(
        max_internals.graph_value(x) for x in flat
    )  # one device
    return per_device


class ServedGPT2(Module[..., ModuleV3Outputs]):
    """The compiled root: MAX's input order in, step 14's model inside, logits out.

    Its one child is called ``model``, so every weight name carries a ``model.`` prefix;
    the weight adapter adds it.
    """

    def __init__(self, model: Module, kv_params: KVCacheParams):
        super().__init__()
        self.model = model
        self.kv_params = kv_params

    def forward(
        self,
        tokens: Tensor,
        return_n_logits: Tensor,
        input_row_offsets: Tensor,
        *kv_inputs: Tensor,
    ) -> ModuleV3Outputs:
        del return_n_logits  # one logits row per request: the pipeline asks for the last
        cache = paged_cache(self.kv_params, kv_inputs)
        logits = self.model(tokens, cache, input_row_offsets)
        return ModuleV3Outputs(next_token_logits=logits)


def convert_for_serving(state_dict: dict[str, Weights], **_: Any) -> dict[str, WeightData]:
    """MAX's weight adapter: the checkpoint's tensors, named and laid out as step 11 does."""
    from solutions.solution_11 import convert_hf_weights  # the learner's with --mine

    arrays = {name: np.from_dlpack(weights.data()) for name, weights in state_dict.items()}
    # np.array copies: the checkpoint's arrays are read-only views of the file, which
    # DLPack cannot hand to MAX.
    return {
        f"model.{name}": WeightData.from_numpy(np.array(array), f"model.{name}")
        for name, array in convert_hf_weights(arrays).items()
    }


def served_class() -> type:
    """Step 14's model class: from the module ``python -m gpt2 serve`` chose, built on the
    learner's passing steps where it chose them (``LearnerSteps``)."""
    import importlib
    import importlib.util

    chosen = [int(n) for n in os.environ.get(STEPS_VARIABLE, "").split(",") if n]
    LearnerSteps(chosen).install()
    source = os.environ.get(SOURCE_VARIABLE, "solutions.solution_14")
    if source.endswith(".py"):  # a file: the learner's step, as the check names it
        spec = importlib.util.spec_from_file_location("_served_step", source)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    else:
        module = importlib.import_module(source)
    return module.GPT2PagedLMHeadModel


class GPT2PipelineModel(ModuleV3PipelineModelWithKVCache[TextContext]):
    """Compiles step 14's model with the checkpoint's weights, for MAX's scheduler."""

    model_config_cls: ClassVar[type[Any]] = GPT2ServingConfig
    batch_processor_cls: ClassVar[type[RaggedBatchProcessor]] = RaggedBatchProcessor

    def _create_model_config(self, state_dict: dict[str, Any]) -> GPT2ServingConfig:
        if self.return_logits != ReturnLogits.LAST_TOKEN:
            raise ValueError("the course's GPT-2 returns the last position's logits only")
        return GPT2ServingConfig.initialize(self.pipeline_config, max_seq_len=self.max_seq_len)

    def _instantiate_module(self, model_config: GPT2ServingConfig) -> Module:
        from solutions.solution_01 import GPT2Config

        config = GPT2Config(**model_config.fields)
        model = served_class()(config, model_config.kv_params)
        root = ServedGPT2(model, model_config.kv_params)
        root.to(self.devices[0])
        return root


def architecture() -> SupportedArchitecture:
    """MAX's registration of the course's GPT-2 (the served class: see ``served_class``)."""
    return SupportedArchitecture(
        name=ARCHITECTURE_NAME,
        example_repo_ids=["openai-community/gpt2"],
        default_encoding=GPT2ServingConfig.DEFAULT_ENCODING,
        supported_encodings=GPT2ServingConfig.SUPPORTED_ENCODINGS,
        pipeline_model=GPT2PipelineModel,
        tokenizer=TextTokenizer,
        context_type=TextContext,
        default_weights_format=WeightsFormat.safetensors,
        multi_gpu_supported=False,
        weight_adapters={WeightsFormat.safetensors: convert_for_serving},
        task=PipelineTask.TEXT_GENERATION,
        config=GPT2ServingConfig,
        batching=RaggedBatchProcessor,
        memory_planner=PagedMemoryPlanner,
        supports_overlap_scheduler=False,
        supports_device_graph_capture=False,
    )


def trace(model_class: type, checkpoint: os.PathLike) -> None:
    """Build (without compiling) the graph MAX's server would compile for ``model_class``
    on the checkpoint's config: a quick way to meet the model's Python and shape errors."""
    import json
    from pathlib import Path

    from max import tree
    from max.experimental import functional as F
    from max.experimental.tensor import default_device
    from max.pipelines.lib.interfaces.batch_processor import (
        modulev3_ragged_kv_symbolic_input_tree,
    )

    from solutions.solution_01 import GPT2Config

    fields = config_fields(json.loads((Path(checkpoint) / "config.json").read_text()))
    config = GPT2Config(**fields)
    device = DeviceRef.CPU()
    kv_params = KVCacheConfig().to_params(
        dtype=DType.float32,
        n_kv_heads=config.n_head,
        head_dim=config.n_embd // config.n_head,
        num_layers=config.n_layer,
        devices=[device],
        data_parallel_degree=1,
    )
    inputs = tree.leaves(
        modulev3_ragged_kv_symbolic_input_tree(kv_params=kv_params, device_refs=[device])
    )
    with F.lazy(), default_device(device.to_device()):
        root = ServedGPT2(model_class(config, kv_params), kv_params)
    root.trace(*inputs)
