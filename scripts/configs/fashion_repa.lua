-- fashion_sit.lua plus REPA (Yu et al. 2024): the DiT's tokens after block
-- repa_depth, through the projector MLP, are aligned (cosine, per token) with
-- the frozen encoder's tokens of the clean image (encoder:tokens(x), 49
-- tokens of the encoder's width, from scripts/configs/fashion_encoder.lua).
-- loss = diffusion + repa_loss_weight * alignment; parts.csv logs both and
-- loss.png draws the alignment loss beside the diffusion loss.
-- Measured as configured (seed 0, 1000 samples, Heun 16 steps, guidance 2,
-- the 90.02% encoder; side by side with fashion_sit.lua on the 2-core
-- machine), FD / class accuracy (training time) against fashion_sit's:
--   500: 4.811 / 76.4% (6:47) against 8.360 / 49.0% (3:47)
--  1000: 2.868 / 85.0% (14:25) against 3.554 / 72.9% (10:00)
--  1500: 2.495 / 87.2% (19:23) against 2.572 / 79.4% (15:19)
--  2000: 2.151 / 86.7% (24:34) against 2.277 / 84.2% (19:16)
--  2500: 2.207 / 86.5% (29:20) against 2.403 / 81.5% (23:29)
-- (floor 0.921; final loss, diffusion + 0.5 alignment, -0.199). REPA converges faster per step, most at the start; a REPA
-- step costs ~1.3 SiT steps here (the encoder's forward, the projector), so
-- per second of training the two are about even. docs/repa_fashion.png.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local cfg = dofile(here .. "fashion_sit.lua")
cfg.repa = { repa_depth = 2, proj_dim = 256, repa_loss_weight = 0.5 }
cfg.out = "runs/fashion_repa"
return cfg
