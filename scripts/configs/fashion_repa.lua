-- fashion_sit.lua plus REPA (Yu et al. 2024): the DiT's tokens after block
-- repa_depth, through the projector MLP, are aligned (cosine, per token) with
-- the frozen encoder's tokens of the clean image (encoder:tokens(x), 49
-- tokens of the encoder's width, from scripts/configs/fashion_encoder.lua).
-- loss = diffusion + repa_loss_weight * alignment; parts.csv logs both and
-- loss.png draws the alignment loss beside the diffusion loss.
-- Measured at steps=600 (seed 0, 1000 samples, Heun 16 steps, guidance 2,
-- the 88.82% encoder of fashion_encoder.lua): FD 8.444 (floor 0.987), class
-- accuracy 74.6%, 4:07 of training on the quiet 2-core machine; fashion_sit
-- at the same 600 steps: FD 13.444, class accuracy 42.3%. REPA converged
-- faster here at that one checkpoint (the full 2500 steps: not measured yet).
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local cfg = dofile(here .. "fashion_sit.lua")
cfg.repa = { repa_depth = 2, proj_dim = 256, repa_loss_weight = 0.5 }
cfg.out = "runs/fashion_repa"
return cfg
