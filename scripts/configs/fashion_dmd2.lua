-- DMD2 distillation of the fashion_sit teacher (its EMA weights: a DiT,
-- class conditional, sampled with Heun 16 steps at guidance 2) into a 4-step
-- student, measured at 1 and 4 steps beside the teacher: FD, its floor and
-- class accuracy in the features of the teacher's encoder, and sampling times.
-- The teacher is trained first when its checkpoint is missing (about 25 min).
-- Student and fake score start as copies of the teacher; the student learns
-- the distribution the teacher draws at guidance 2 (the real score is the
-- guided one), from the real batches' labels.
-- Measured (seed 0, 1000 samples a set, the 90.02% encoder, floor 0.921):
-- 35:15 of training (the first 160 steps beside another run on the 2 cores,
-- then ~5.5 s a step alone); teacher (Heun 16, guidance 2) FD 2.146, class
-- accuracy 83.1%, 75.0 s to sample; the student at 1 step FD 8.682 (4.05x
-- the teacher's), 76.9%, 1.37 s; at 4 steps FD 3.074 (1.43x), 84.3%, 5.80 s.
-- A 1-step student: scripts/moonflow train THIS 'distill.student_t_list={1.0}' out=runs/fashion_dmd2_1step
-- (300 steps, 11:10 alone): FD 4.013 (1.87x the teacher's), 79.4%, 1.08 s.
return {
  seed = 0,
  distill = {
    teacher = "runs/fashion_sit/checkpoint.safetensors",
    teacher_config = "scripts/configs/fashion_sit.lua",
    guidance_scale = 2.0,
    student = { init = "teacher" },
    -- the fake score is asked at every t of sample_t_cfg: trained at uniform t
    fake = { init = "teacher", train_time_dist_type = "uniform" },
    student_t_list = { 1.0, 0.75, 0.5, 0.25 },
    sample_t_cfg = { time_dist_type = "uniform", min_t = 0.02, max_t = 0.98 },
    fake_score_updates = 5,
    gan_loss_weight = 0,
    student_optimizer = { lr = 1e-4, betas = { 0.0, 0.999 } },
    fake_optimizer = { lr = 1e-4, betas = { 0.0, 0.999 } },
  },
  ema = { decay = 0.99 },
  steps = 300,
  batch = 32,
  eval_n = 1000,
  out = "runs/fashion_dmd2",
  log_every = 10,
  checkpoint_every = 50,
}
