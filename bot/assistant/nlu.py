"""Comptoir's own Rasa NLU components: the French spaCy model trimmed to what we read,
and released once read.

The pipeline reads two things from spaCy: its tokenizer and the static word vectors of
`fr_core_news_md` (SpacyFeaturizer). Rasa's own `SpacyNLP` loads the model with every
statistical component but the parser (tagger, morphologizer, lemmatizer, NER), which
costs about 4.5 ms of CPU on every message for annotations nothing downstream uses
(LexicalSyntacticFeaturizer is configured without POS features). This component loads
the same model without those components: tokenizing and vector lookup take about
0.01 ms, and the Rasa process holds 880,000 fewer objects and 280 MB less memory than
with them loaded and switched off. Tokens then carry no lemma, so CountVectorsFeaturizer
counts words as written; the character n-gram featurizer already covers inflections,
and the held-out NLU set (tests/nlu) measures the result.

Rasa finds the component that provides the spaCy model by its class name
(`model_from="SpacyNLP"` on SpacyTokenizer and SpacyFeaturizer), so this class keeps
that name; config.yml names it by its module path, `bot.assistant.nlu.SpacyNLP`.
"""
from __future__ import annotations

from typing import Any, Dict, List, Text

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.constants import SPACY_DOCS
from rasa.nlu.model import InvalidModelError
from rasa.nlu.utils import spacy_utils
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData


@DefaultV1Recipe.register(
    [DefaultV1Recipe.ComponentType.MODEL_LOADER, DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER],
    is_trainable=False,
    model_from="SpacyNLP",
)
class SpacyNLP(spacy_utils.SpacyNLP):
    """`SpacyNLP` with only the tokenizer and the word vectors at work."""

    @staticmethod
    def load_model(spacy_model_name: Text) -> spacy_utils.SpacyModel:
        import spacy

        try:
            # Excluded, not merely disabled: their weights and lookup tables are not even
            # loaded (see above).
            components = spacy.util.get_model_meta(
                spacy.util.get_package_path(spacy_model_name))["components"]
            model = spacy.load(spacy_model_name, exclude=components)
        except (OSError, ImportError) as missing:
            raise InvalidModelError(f"spaCy model '{spacy_model_name}' is not installed: "
                                    f"`make install` installs it ({missing})") from missing
        # The fingerprint names the trimming, so a cached model of the full pipeline
        # is never reused for this one.
        return spacy_utils.SpacyModel(model=model, model_name=f"{spacy_model_name}:tokens+vectors")


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER, is_trainable=False)
class ReleaseSpacyDocs(GraphComponent):
    """Drops the spaCy documents from each message once the spaCy featurizer is done.

    Nothing after SpacyFeaturizer reads them, and a spaCy `Doc` drags its whole `Vocab`
    (the vectors table) along when a message is copied: Rasa's NLU evaluation deep-copies
    every message, which took about half a second per message with them kept.
    """

    @classmethod
    def create(cls, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource,
               execution_context: ExecutionContext) -> "ReleaseSpacyDocs":
        return cls()

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            for key in SPACY_DOCS.values():
                message.data.pop(key, None)
        return messages

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        self.process(training_data.training_examples)
        return training_data
