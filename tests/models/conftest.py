"""Shared fixtures of the model tests: a tiny BERT directory in Hugging Face's layout."""
import pytest
import torch

TINY_BERT = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, vocab_size=100,
                 max_position_embeddings=64, type_vocab_size=2)


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory):
    """A random tiny BertModel (hidden 32, 2 layers, 2 heads, vocab 100) saved with ``save_pretrained``: what
    ``bert``'s ``model_dir`` expects (config.json + model.safetensors)."""
    from transformers import BertConfig, BertModel

    path = tmp_path_factory.mktemp("tiny_bert")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        BertModel(BertConfig(**TINY_BERT)).save_pretrained(path)
    return path
