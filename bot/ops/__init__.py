"""Running Comptoir: the command line, the supervisor of the processes, training, the demo
shop, and the launchers of the Rasa and action servers."""
