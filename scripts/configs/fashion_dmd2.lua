-- DMD2 distillation of the fashion_sit teacher (its EMA weights: a DiT,
-- class conditional, sampled with Heun 16 steps at guidance 2) into a 4-step
-- student, measured at 1 and 4 steps beside the teacher: FD, its floor and
-- class accuracy in the features of the teacher's encoder, and sampling times.
-- The teacher is trained first when its checkpoint is missing (about 25 min).
-- Student and fake score start as copies of the teacher; the student learns
-- the distribution the teacher draws at guidance 2 (the real score is the
-- guided one), from the real batches' labels.
-- A 1-step student: scripts/moonflow train THIS 'distill.student_t_list={1.0}' out=runs/fashion_dmd2_1step
-- Size: one step (batch 32, 5 fake-score updates, backward simulation through
-- 3 rungs) took 10.6 s on the 2-core CPU device shared with two other runs
-- (this run ~80% of a core; steps=20 against a fashion_sit-sized teacher):
-- 300 steps ~53 min there, roughly a third of that on a quiet machine
-- (fashion_sit ran ~3x faster quiet than shared). The evals add ~3.5 min
-- (measured the same way: the teacher's Heun 16 steps with guidance on 1000
-- samples 186 s; the student's 1000 at 1 and at 4 steps with their FD 29 s).
-- Quality is not measured yet: no trained fashion_sit teacher was at hand;
-- the learning rates are a first guess.
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
