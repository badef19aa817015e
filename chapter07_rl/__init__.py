"""Chapter 7: reinforcement learning (recycling-robot MDP, DQN on CartPole from state vectors and from pixels)."""
